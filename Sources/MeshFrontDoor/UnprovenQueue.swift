import NIOCore

/// The connections of one listener that have not proven themselves yet (no completed TLS handshake, or no first
/// byte), oldest first: at the cap, the oldest of them makes room for a newcomer, so a flood of half-open
/// connections cannot keep a legitimate client out (it would have to open a cap's worth of connections within one
/// real handshake, not within one handshake timeout). A value; `ConnectionGate` keeps it under a lock.
struct UnprovenQueue {
    private var order: [(id: ObjectIdentifier, channel: any Channel)] = []
    private var head = 0
    private var waiting: Set<ObjectIdentifier> = []

    var count: Int { waiting.count }
    /// Entries held, waiting or not yet dropped (for tests: bounded by twice `count` plus a little).
    var held: Int { order.count - head }

    mutating func append(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        order.append((id, channel))
        waiting.insert(id)
    }

    /// It proved itself, or closed: no longer a candidate. Its entry is dropped lazily, but the queue never holds
    /// more than twice the waiting connections (plus a little): it holds the channels, so it must not keep
    /// closed ones alive under steady traffic.
    mutating func remove(_ channel: any Channel) {
        guard waiting.remove(ObjectIdentifier(channel)) != nil else { return }
        if waiting.isEmpty {
            order.removeAll(keepingCapacity: true)
            head = 0
        } else if order.count - head > 2 * waiting.count + 64 {
            order = order[head...].filter { waiting.contains($0.id) }
            head = 0
        }
    }

    /// The oldest connection still unproven, taken out of the queue.
    mutating func popOldest() -> (any Channel)? {
        while head < order.count {
            let entry = order[head]
            head += 1
            if waiting.remove(entry.id) != nil {
                compact()
                return entry.channel
            }
        }
        compact()
        return nil
    }

    /// Entries that proved themselves or closed are skipped lazily; the consumed front is dropped once it is half.
    private mutating func compact() {
        if head > 64 && head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}

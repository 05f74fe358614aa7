import MeshCore
import NIOCore
import NIOEmbedded
import NIOTLS
import Synchronization
import Testing

@testable import MeshFrontDoor

/// The front door as values on an embedded loop with a controlled clock: the cap, the handshake and
/// idle timeouts, and what each reports.
struct FrontDoorTests {
    final class Events: Sendable {
        let seen = Mutex<[FrontDoorEvent]>([])
        var all: [FrontDoorEvent] { seen.withLock { $0 } }
    }

    func gate(_ events: Events, max: Int = 10) -> ConnectionGate {
        ConnectionGate(
            listener: "test",
            limits: ListenerLimits(maxConnections: max, handshakeTimeout: .seconds(10), idleTimeout: .seconds(60))
        ) { event, _ in events.seen.withLock { $0.append(event) } }
    }

    /// An active connection behind the front door: admitted by the listener's gate, guarded as a bootstrap's
    /// child initializer would build it. Throws if the listener closed it at accept.
    func connection(_ gate: ConnectionGate, loop: EmbeddedEventLoop, tls: Bool) throws -> EmbeddedChannel {
        let listener = EmbeddedChannel(handler: AcceptGate(gate: gate), loop: loop)
        let channel = EmbeddedChannel(loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try listener.writeInbound(channel as any Channel)
        guard (try listener.readInbound(as: (any Channel).self)) != nil else {
            loop.run()
            throw Refused(active: channel.isActive)
        }
        try channel.pipeline.syncOperations.addHandler(FrontDoor.guardHandler(gate: gate, tls: tls))
        return channel
    }

    struct Refused: Error, Equatable { let active: Bool }

    @Test func aStalledTLSHandshakeIsClosedAndACompletedOneStays() throws {
        let loop = EmbeddedEventLoop()
        let events = Events()
        let gate = gate(events)
        let stalled = try connection(gate, loop: loop, tls: true)
        let completed = try connection(gate, loop: loop, tls: true)
        // Bytes alone do not prove a TLS connection: a truncated ClientHello is still a stalled handshake.
        try stalled.writeInbound(ByteBuffer(string: "\u{16}\u{03}\u{01}"))
        completed.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: "h2"))
        loop.advanceTime(by: .seconds(9))
        #expect(stalled.isActive, "not before the handshake timeout")
        loop.advanceTime(by: .seconds(2))
        #expect(!stalled.isActive)
        #expect(completed.isActive)
        #expect(events.all == [.handshakeTimeout])
        #expect(gate.openConnections == 1, "the closed connection gave its slot back")
        _ = try? completed.finish()
    }

    @Test func aPlaintextConnectionIsProvenByItsFirstByte() throws {
        let loop = EmbeddedEventLoop()
        let events = Events()
        let gate = gate(events)
        let silent = try connection(gate, loop: loop, tls: false)
        let talking = try connection(gate, loop: loop, tls: false)
        try talking.writeInbound(ByteBuffer(string: "G"))
        loop.advanceTime(by: .seconds(11))
        #expect(!silent.isActive)
        #expect(talking.isActive)
        #expect(events.all == [.handshakeTimeout])
        _ = try? talking.finish()
    }

    @Test func anIdleConnectionIsClosedAndTrafficEitherWayKeepsItOpen() throws {
        let loop = EmbeddedEventLoop()
        let events = Events()
        let gate = gate(events)
        let idle = try connection(gate, loop: loop, tls: false)
        let reading = try connection(gate, loop: loop, tls: false)
        let writing = try connection(gate, loop: loop, tls: false)
        for channel in [idle, reading, writing] { try channel.writeInbound(ByteBuffer(string: "x")) }
        // For three idle timeouts, one connection keeps receiving and one keeps sending, every 20 s.
        for _ in 0..<9 {
            loop.advanceTime(by: .seconds(20))
            try reading.writeInbound(ByteBuffer(string: "x"))
            try writing.writeOutbound(ByteBuffer(string: "y"))
        }
        #expect(!idle.isActive, "silent for more than 1.25 idle timeouts")
        #expect(reading.isActive)
        #expect(writing.isActive)
        #expect(events.all == [.idleTimeout])
        // Once silent, each closes within 1.25 idle timeouts (a quarter-timeout tick).
        loop.advanceTime(by: .seconds(59))
        #expect(reading.isActive, "not before the idle timeout")
        loop.advanceTime(by: .seconds(16))
        #expect(!reading.isActive && !writing.isActive)
        #expect(gate.openConnections == 0)
    }

    @Test func aCapFullOfProvenConnectionsRefusesOneMoreAndASlotFreedIsReused() throws {
        let loop = EmbeddedEventLoop()
        let events = Events()
        let gate = gate(events, max: 2)
        let first = try connection(gate, loop: loop, tls: false)
        let second = try connection(gate, loop: loop, tls: false)
        for channel in [first, second] { try channel.writeInbound(ByteBuffer(string: "G")) }
        #expect(throws: Refused(active: false)) { try connection(gate, loop: loop, tls: false) }
        #expect(events.all == [.refusedAtCap])
        #expect(gate.openConnections == 2)
        try first.close().wait()
        loop.run()
        _ = try connection(gate, loop: loop, tls: false)
        #expect(gate.openConnections == 2)
        #expect(gate.peakConnections == 2)
    }
}

/// Eviction at the cap, and the queue that decides who goes.
struct EvictionTests {
    @Test func atTheCapTheOldestUnprovenConnectionMakesRoomAndProvenOnesStay() throws {
        let loop = EmbeddedEventLoop()
        let events = FrontDoorTests.Events()
        let gate = FrontDoorTests().gate(events, max: 3)
        let proven = try FrontDoorTests().connection(gate, loop: loop, tls: false)
        try proven.writeInbound(ByteBuffer(string: "G"))
        let oldest = try FrontDoorTests().connection(gate, loop: loop, tls: true)
        let younger = try FrontDoorTests().connection(gate, loop: loop, tls: true)
        // A newcomer at the cap: the oldest unproven goes, the proven one and the younger stay.
        let newcomer = try FrontDoorTests().connection(gate, loop: loop, tls: true)
        loop.run()
        #expect(!oldest.isActive)
        #expect(proven.isActive && younger.isActive && newcomer.isActive)
        #expect(events.all == [.evictedAtCap])
        #expect(gate.openConnections == 3)
        // All proven: the next one is refused instead.
        for channel in [younger, newcomer] {
            channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
        }
        #expect(throws: FrontDoorTests.Refused(active: false)) {
            try FrontDoorTests().connection(gate, loop: loop, tls: false)
        }
        #expect(events.all == [.evictedAtCap, .refusedAtCap])
    }

    @Test func theQueueNeverHoldsClosedConnectionsUnderSteadyTraffic() {
        var queue = UnprovenQueue()
        let lingering = EmbeddedChannel()
        queue.append(lingering)  // one connection that never proves itself, all along
        for _ in 0..<10_000 {
            let channel = EmbeddedChannel()
            queue.append(channel)
            queue.remove(channel)
        }
        #expect(queue.count == 1)
        #expect(queue.held <= 2 + 64, "\(queue.held) entries held for 1 waiting")
        #expect(queue.popOldest() === lingering)
        #expect(queue.popOldest() == nil)
    }
}

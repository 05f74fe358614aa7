import NIOCore

/// The forwarder's one timer. Whatever is due next for the active exchange — its deadline, its try's deadline,
/// a retry's wait — and the idle checks share a single scheduled task, moved only when something earlier
/// becomes due: a keep-alive connection under the default policy schedules one task per idle quarter, not one
/// per request.
extension HTTPForwardingHandler {
    /// Idle checks for a new exchange: every quarter of the timeout; four in a row without a byte end it.
    func startIdleChecks(_ timeout: TimeAmount) {
        idleTimeout = timeout
        activity = true
        quietChecks = 0
        idleCheckAt = .now() + .nanoseconds(timeout.nanoseconds / 4)
    }

    func armTimer() {
        guard let context else { return }
        var due = machine.nextDue
        if let check = idleCheckAt { due = due.map { min($0, check) } ?? check }
        guard let due else { return }
        if timer != nil, let timerDue, timerDue <= due { return }
        timer?.cancel()
        timerDue = due
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: due) { self.timerFired() }
    }

    private func timerFired() {
        timer = nil
        timerDue = nil
        let now = NIODeadline.now()
        if let check = idleCheckAt, now >= check {
            if activity {
                activity = false
                quietChecks = 0
            } else {
                quietChecks += 1
            }
            if quietChecks >= 4 {
                idleCheckAt = nil
                perform(machine.idleTimedOut(at: now))
            } else {
                idleCheckAt = now + .nanoseconds(idleTimeout.nanoseconds / 4)
            }
        }
        perform(machine.timerFired(at: now, withdraw: { withdraw(at: now) }))
        // Fired for something no longer due (an earlier exchange's deadline): arm for what is due now.
        armTimer()
    }
}

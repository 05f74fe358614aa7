import NIOCore

/// What the route step decides for one request besides its endpoint: how failed tries are retried, and by
/// when the whole exchange must be over.
struct ExchangePlan {
    /// nil: a failed try is never sent again.
    var rules: RetryRules?
    /// The end of the exchange, all tries and waits included: the policy's request timeout or the caller's
    /// propagated deadline, whichever comes first. Set from `timeLimit` when the request is routed.
    var deadline: NIODeadline?
    /// The same, as a time from the request's arrival (what the route step knows).
    var timeLimit: TimeAmount?
    /// Which limit `deadline` is, as a timeout reports it.
    var deadlineKind = ProxyError.Timeout.request
    /// Whether each try tells the next hop how long it has left.
    var propagatesDeadline = true

    static let none = ExchangePlan(rules: nil, deadline: nil)

    init(rules: RetryRules?, deadline: NIODeadline?, timeLimit: TimeAmount? = nil) {
        self.rules = rules
        self.deadline = deadline
        self.timeLimit = timeLimit
    }
}

/// How one try ended, for the balancer that picked its endpoint: latency to the first response byte feeds
/// peak-EWMA, failures feed outlier detection, and the endpoint has one request less in flight.
struct AttemptReport {
    enum Result: Equatable {
        /// The endpoint answered, not with a 5xx.
        case succeeded
        /// A 5xx, a connect failure, a reset, a per-try timeout.
        case failed
        /// The try ended for reasons that say nothing about the endpoint (the client left, the deadline passed).
        case neutral
    }

    let endpoint: EndpointTarget
    let result: Result
    let firstByte: TimeAmount?
    let at: NIODeadline
}

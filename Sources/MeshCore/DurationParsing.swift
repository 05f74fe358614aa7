extension Duration {
    /// Parses `250ms`, `2s`, `5m`, `24h`, `1h30m`. Throws `.invalidDuration` otherwise.
    public init(parsing text: String) throws(MeshError) {
        var total: Duration = .zero
        var number = ""
        var rest = Substring(text)
        guard !text.isEmpty else { throw MeshError(.invalidDuration, "must be a duration such as 250ms, 30s, 24h") }
        while let c = rest.first {
            if c.isASCII && c.isNumber {
                number.append(c)
                rest = rest.dropFirst()
                continue
            }
            guard let n = Int64(number) else {
                throw MeshError(.invalidDuration, "\"\(text)\" must be a duration such as 250ms, 30s, 24h")
            }
            let unit: Duration
            if rest.hasPrefix("ms") {
                unit = .milliseconds(1); rest = rest.dropFirst(2)
            } else if rest.hasPrefix("s") {
                unit = .seconds(1); rest = rest.dropFirst()
            } else if rest.hasPrefix("m") {
                unit = .seconds(60); rest = rest.dropFirst()
            } else if rest.hasPrefix("h") {
                unit = .seconds(3600); rest = rest.dropFirst()
            } else if rest.hasPrefix("d") {
                unit = .seconds(86400); rest = rest.dropFirst()
            } else {
                throw MeshError(.invalidDuration, "\"\(text)\" has an unknown unit (use ms, s, m, h, d)")
            }
            total += unit * n
            number = ""
        }
        guard number.isEmpty else {
            throw MeshError(.invalidDuration, "\"\(text)\" needs a unit (e.g. \(number)s)")
        }
        self = total
    }

    /// Whole seconds, rounding down.
    public var wholeSeconds: Int64 { components.seconds }
}

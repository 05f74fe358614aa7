/// What an error message may repeat of untrusted input: at most 64 characters and the full length, so a
/// megabyte name comes back as a line, never as a megabyte (which, in a gRPC status, is over the 16 KiB
/// header limit and turns a clear refusal into a dropped connection).
/// Counted in Unicode scalars, not characters: one character can carry any number of combining marks.
public func echoed(_ text: String) -> String {
    let scalars = text.unicodeScalars
    guard scalars.count > 64 else { return "\"\(text)\"" }
    var cut = String.UnicodeScalarView()
    cut.append(contentsOf: scalars.prefix(64))
    return "\"\(String(cut))…\" (\(text.utf8.count) bytes)"
}

/// Limits of the control plane's API, shared by the server (which enforces them) and `meshctl` (which
/// refuses before sending).
public enum APILimits {
    /// The largest request or response message: gRPC's default, set explicitly on both ends.
    public static let maxMessageBytes = 4 * 1024 * 1024
    /// The most text an error status carries (its message travels in an HTTP/2 trailer, 16 KiB at most).
    public static let maxErrorMessageBytes = 8 * 1024
}

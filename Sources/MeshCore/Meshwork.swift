/// The release every binary reports with `--version`.
public enum Meshwork {
    public static let version = "0.5.0-dev"
}

public import Logging

extension Logger {
    /// A logger that drops everything: the default for library calls whose caller passes none.
    public static let disabled = Logger(label: "vdb.disabled") { _ in SwiftLogNoOpLogHandler() }
}

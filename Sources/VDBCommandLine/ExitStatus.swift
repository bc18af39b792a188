import VDBKit

/// sysexits-style exit codes for the CLIs (DESIGN "Edges"), decided once from the error's
/// category so every command reports failures the same way.
public enum ExitStatus {
    public static let success: Int32 = 0
    /// A requested gate (`--min-recall`) failed.
    public static let gateFailed: Int32 = 1
    public static let usage: Int32 = 64
    public static let dataError: Int32 = 65
    public static let noInput: Int32 = 66
    /// A service the tool needs (the cluster's etcd) cannot be reached.
    public static let unavailable: Int32 = 69
    public static let software: Int32 = 70
    public static let ioError: Int32 = 74

    /// The exit code for an error thrown by VDBKit.
    public static func code(for error: any Error) -> Int32 {
        guard let error = error as? any DomainError else { return software }
        switch error.category {
        case .invalidArgument, .alreadyExists: return usage
        case .invalidInput, .corrupt, .unavailable: return dataError
        case .notFound, .missingInput: return noInput
        case .conflict, .io: return ioError
        }
    }

    /// The one-line message printed for an error.
    public static func message(for error: any Error) -> String {
        guard let error = error as? any DomainError else { return "internal error: \(error)" }
        return error.cause.map { "\(error.message): \($0)" } ?? error.message
    }
}

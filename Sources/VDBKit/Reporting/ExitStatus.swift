/// sysexits-style exit codes for the CLIs (DESIGN "Edges"), decided once from the error's
/// domain code so every command reports failures the same way.
public enum ExitStatus {
    public static let success: Int32 = 0
    /// A requested gate (`--min-recall`) failed.
    public static let gateFailed: Int32 = 1
    public static let usage: Int32 = 64
    public static let dataError: Int32 = 65
    public static let noInput: Int32 = 66
    public static let software: Int32 = 70
    public static let ioError: Int32 = 74

    /// The exit code for an error thrown by VDBKit.
    public static func code(for error: any Error) -> Int32 {
        switch error {
        case let e as IngestError:
            return e.code == .missingInput ? noInput : dataError
        case let e as StorageError:
            switch e.code {
            case .notFound: return noInput
            case .io, .conflict: return ioError
            case .invalidArgument, .alreadyExists: return usage
            default: return dataError
            }
        case let e as QueryError:
            return e.code == .invalidArgument ? usage : dataError
        case is IndexError:
            return usage
        default:
            return software
        }
    }

    /// The one-line message printed for an error.
    public static func message(for error: any Error) -> String {
        switch error {
        case let e as IngestError: return e.message
        case let e as StorageError: return e.cause.map { "\(e.message): \($0)" } ?? e.message
        case let e as QueryError: return e.message
        case let e as IndexError: return e.message
        default: return "internal error: \(error)"
        }
    }
}

/// Domain errors (STYLE "Error model"), shaped like NIOFS's `FileSystemError`: an extensible
/// `code`, a message that says what and which file, an optional underlying cause, and where it
/// was thrown. Every domain (storage, ingest, index, query, updates) is one specialisation of
/// ``VDBError``; each code belongs to an ``ErrorCategory``, and the executables map the category
/// once: to exit codes in the CLIs (`VDBCommandLine.ExitStatus`), to HTTP statuses in the
/// server (`ProblemDetails`).

/// Where an error was thrown, for logs and bug reports.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public init(file: String = #fileID, line: Int = #line) {
        self.file = file
        self.line = line
    }
    public var description: String { "\(file):\(line)" }
}

/// What kind of failure an error code is, whatever its domain: what the executables map.
public enum ErrorCategory: String, Sendable, Hashable, CaseIterable {
    /// The caller asked for something out of range or malformed (422, exit 64).
    case invalidArgument
    /// The caller's data is unusable: a dataset, a vector, a document (422, exit 65).
    case invalidInput
    /// A library, version, document or chunk does not exist (404, exit 66).
    case notFound
    /// An input file does not exist or cannot be opened (404, exit 66).
    case missingInput
    /// The thing to create exists already (409, exit 64).
    case alreadyExists
    /// A concurrent change won; retrying may succeed (409, exit 74).
    case conflict
    /// Cannot be done now, or not with what is there (503, exit 65).
    case unavailable
    /// Stored data does not match its format (500 without internals, exit 65).
    case corrupt
    /// A system call failed (500 without internals, exit 74).
    case io
}

/// A family of error codes (storage, ingest, …), as a type so each domain's codes stay apart.
public protocol ErrorDomain: Sendable {}

/// One stable error code of a domain: its text is what clients match on (`problem.code`).
public struct ErrorCode<Domain: ErrorDomain>: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public let category: ErrorCategory

    public init(_ rawValue: String, _ category: ErrorCategory) {
        self.rawValue = rawValue
        self.category = category
    }

    public var description: String { rawValue }
    public static func == (a: Self, b: Self) -> Bool { a.rawValue == b.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
}

/// What every VDBKit error offers the executables, whatever its domain.
public protocol DomainError: Error, Sendable, CustomStringConvertible {
    var category: ErrorCategory { get }
    /// The stable code, e.g. `corrupt-segment`.
    var codeName: String { get }
    /// What went wrong, naming the file, row, library or field.
    var message: String { get }
    /// The request field the error is about, when there is one (`ef`, `vector`).
    var field: String? { get }
    var cause: (any Error & Sendable)? { get }
    var location: SourceLocation { get }
}

/// An error of one domain.
public struct VDBError<Domain: ErrorDomain>: DomainError {
    public typealias Code = ErrorCode<Domain>

    public var code: Code
    public var message: String
    public var field: String?
    public var cause: (any Error & Sendable)?
    public var location: SourceLocation

    public init(
        _ code: Code, _ message: String, field: String? = nil, cause: (any Error & Sendable)? = nil,
        file: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.field = field
        self.cause = cause
        self.location = SourceLocation(file: file, line: line)
    }

    public var category: ErrorCategory { code.category }
    public var codeName: String { code.rawValue }

    public var description: String {
        var s = "\(message) [\(code)]"
        if let cause { s += ": \(cause)" }
        return s
    }
}

// MARK: Domains

public enum StorageDomain: ErrorDomain {}
/// Errors reading or writing library files: segments, manifests, query sets, the WAL.
public typealias StorageError = VDBError<StorageDomain>

extension ErrorCode where Domain == StorageDomain {
    /// A file's bytes do not match its format: bad magic, checksum, bounds or truncation.
    public static var corruptSegment: Self { Self("corrupt-segment", .corrupt) }
    /// A file was written by a newer format version than this build reads.
    public static var versionMismatch: Self { Self("version-mismatch", .corrupt) }
    /// A system call failed.
    public static var io: Self { Self("io", .io) }
    /// A library, manifest or file does not exist.
    public static var notFound: Self { Self("not-found", .notFound) }
    /// The thing to create exists already.
    public static var alreadyExists: Self { Self("already-exists", .alreadyExists) }
    /// A manifest does not parse or contradicts itself.
    public static var corruptManifest: Self { Self("corrupt-manifest", .corrupt) }
    /// The caller asked for something the store cannot do (a bad name, a bad shard count).
    public static var invalidArgument: Self { Self("invalid-argument", .invalidArgument) }
    /// Another writer published a version since this change was prepared.
    public static var conflict: Self { Self("conflict", .conflict) }
}

public enum IngestDomain: ErrorDomain {}
/// Errors in input data: datasets, vectors, documents.
public typealias IngestError = VDBError<IngestDomain>

extension ErrorCode where Domain == IngestDomain {
    /// The input file is not in the format it claims (truncated, bad header, bad JSON).
    public static var malformedInput: Self { Self("malformed-input", .invalidInput) }
    /// A vector's length differs from the contract's dimension.
    public static var dimensionMismatch: Self { Self("dimension-mismatch", .invalidInput) }
    /// A vector holds NaN or infinity.
    public static var nonFiniteValue: Self { Self("non-finite-value", .invalidInput) }
    /// A zero vector where the contract normalizes.
    public static var zeroVector: Self { Self("zero-vector", .invalidInput) }
    /// A vector too long for distances to it to stay finite, or a component its storage cannot hold.
    public static var vectorOutOfRange: Self { Self("vector-out-of-range", .invalidInput) }
    /// The contract itself is unusable, or conflicts with the library's.
    public static var invalidContract: Self { Self("invalid-contract", .invalidInput) }
    /// The input file does not exist or cannot be opened.
    public static var missingInput: Self { Self("missing-input", .missingInput) }
    /// An id appears twice.
    public static var duplicateID: Self { Self("duplicate-id", .invalidInput) }
    /// The input format is not one we read.
    public static var unsupportedFormat: Self { Self("unsupported-format", .invalidInput) }
}

public enum QueryDomain: ErrorDomain {}
/// Errors answering a query.
public typealias QueryError = VDBError<QueryDomain>

extension ErrorCode where Domain == QueryDomain {
    public static var invalidArgument: Self { Self("invalid-argument", .invalidArgument) }
    /// No ground truth, no query set, or an index that the library does not have.
    public static var unavailable: Self { Self("unavailable", .unavailable) }
}

public enum IndexDomain: ErrorDomain {}
/// Errors building or using an index.
public typealias IndexError = VDBError<IndexDomain>

extension ErrorCode where Domain == IndexDomain {
    /// A build or search parameter is out of range.
    public static var invalidParameter: Self { Self("invalid-parameter", .invalidArgument) }
    /// The index kind is unknown or cannot serve this library.
    public static var unsupported: Self { Self("unsupported", .invalidArgument) }
}

public enum UpdateDomain: ErrorDomain {}
/// Errors of incremental updates.
public typealias UpdateError = VDBError<UpdateDomain>

extension ErrorCode where Domain == UpdateDomain {
    /// A document or chunk named by the transaction does not exist.
    public static var notFound: Self { Self("not-found", .notFound) }
    /// The transaction conflicts with the current state (an id that exists already, a chunk
    /// id owned by another document).
    public static var conflict: Self { Self("conflict", .alreadyExists) }
    /// A vector breaks the contract, or the transaction is malformed.
    public static var invalidArgument: Self { Self("invalid-argument", .invalidArgument) }
    /// The shard cannot take the transaction now (its unflushed rows are at capacity).
    public static var unavailable: Self { Self("unavailable", .unavailable) }
    /// The shard has as many writes in flight as it takes; retrying shortly may succeed.
    public static var overloaded: Self { Self("overloaded", .unavailable) }
}

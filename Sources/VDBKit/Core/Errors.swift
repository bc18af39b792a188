/// Domain errors, shaped like NIOFS's `FileSystemError`: an extensible `code`, a message that
/// says what and which file, an optional underlying cause, and where it was thrown.
/// Executables map `code` once: to exit codes in the CLIs, to HTTP statuses in the server.

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

/// Errors reading or writing library files: segments, manifests, query sets.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// A file's bytes do not match its format: bad magic, checksum, bounds or truncation.
        public static let corruptSegment = Code("corrupt-segment")
        /// A file was written by a newer format version than this build reads.
        public static let versionMismatch = Code("version-mismatch")
        /// A system call failed.
        public static let io = Code("io")
        /// A library, manifest or file does not exist.
        public static let notFound = Code("not-found")
        /// The thing to create exists already.
        public static let alreadyExists = Code("already-exists")
        /// A manifest does not parse or contradicts itself.
        public static let corruptManifest = Code("corrupt-manifest")
        /// The caller asked for something the store cannot do (a bad name, a bad shard count).
        public static let invalidArgument = Code("invalid-argument")
        /// Another writer published a version since this change was prepared.
        public static let conflict = Code("conflict")
    }

    public var code: Code
    public var message: String
    public var cause: (any Error & Sendable)?
    public var location: SourceLocation

    public init(
        _ code: Code, _ message: String, cause: (any Error & Sendable)? = nil,
        file: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.cause = cause
        self.location = SourceLocation(file: file, line: line)
    }

    public var description: String {
        var s = "\(message) [\(code)]"
        if let cause { s += ": \(cause)" }
        return s
    }
}

/// Errors in input data: datasets, vectors, documents.
public struct IngestError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The input file is not in the format it claims (truncated, bad header, bad JSON).
        public static let malformedInput = Code("malformed-input")
        /// A vector's length differs from the contract's dimension.
        public static let dimensionMismatch = Code("dimension-mismatch")
        /// A vector holds NaN or infinity.
        public static let nonFiniteValue = Code("non-finite-value")
        /// A zero vector where the contract normalizes.
        public static let zeroVector = Code("zero-vector")
        /// The contract itself is unusable, or conflicts with the library's.
        public static let invalidContract = Code("invalid-contract")
        /// The input file does not exist or cannot be opened.
        public static let missingInput = Code("missing-input")
        /// An id appears twice.
        public static let duplicateID = Code("duplicate-id")
        /// The input format is not one we read.
        public static let unsupportedFormat = Code("unsupported-format")
    }

    public var code: Code
    public var message: String
    public var location: SourceLocation

    public init(_ code: Code, _ message: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.location = SourceLocation(file: file, line: line)
    }

    public var description: String { "\(message) [\(code)]" }
}

/// Errors answering a query.
public struct QueryError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        public static let invalidArgument = Code("invalid-argument")
        /// No ground truth, no query set, or an index that the library does not have.
        public static let unavailable = Code("unavailable")
    }

    public var code: Code
    public var message: String
    public var location: SourceLocation

    public init(_ code: Code, _ message: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.location = SourceLocation(file: file, line: line)
    }

    public var description: String { "\(message) [\(code)]" }
}

/// Errors building or using an index.
public struct IndexError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// A build or search parameter is out of range.
        public static let invalidParameter = Code("invalid-parameter")
        /// The index kind is unknown or cannot serve this library.
        public static let unsupported = Code("unsupported")
    }

    public var code: Code
    public var message: String
    public var location: SourceLocation

    public init(_ code: Code, _ message: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message
        self.location = SourceLocation(file: file, line: line)
    }

    public var description: String { "\(message) [\(code)]" }
}

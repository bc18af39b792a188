import Foundation

/// Describes a decoding error by the JSON path it happened at.
package func describe(_ error: any Error) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    func path(_ context: DecodingError.Context) -> String {
        let p = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return p.isEmpty ? "" : " at \(p.hasPrefix(".") ? String(p.dropFirst()) : p)"
    }
    switch error {
    case .keyNotFound(let key, let context): return "missing field '\(key.stringValue)'\(path(context))"
    case .typeMismatch(_, let context), .valueNotFound(_, let context):
        return "\(context.debugDescription)\(path(context))"
    case .dataCorrupted(let context): return "malformed JSON\(path(context)): \(context.debugDescription)"
    @unknown default: return "\(error)"
    }
}

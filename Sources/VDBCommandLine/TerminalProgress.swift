#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
public import VDBKit

/// Draws a progress bar on standard error when it is a terminal, and nothing otherwise, so
/// logs of batch pipelines stay clean.
public final class TerminalProgress: Sendable {
    private struct State {
        var lastDraw: UInt64 = 0
        var drawn = false
    }
    private let state = Locked(State())
    public let enabled: Bool

    /// - Parameter enabled: draw or not; by default, when standard error is a terminal.
    public init(enabled: Bool? = nil) { self.enabled = enabled ?? (isatty(STDERR_FILENO) == 1) }

    /// A handler to pass to VDBKit calls.
    public var handler: ProgressHandler { { [self] event in self.update(event) } }

    public func update(_ event: ProgressEvent) {
        guard enabled else { return }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        let line: String? = state.withLock { s in
            // At most ten redraws a second, whatever the batch rate.
            if s.drawn && now - s.lastDraw < 100_000_000 && event.completed != event.total { return nil }
            s.lastDraw = now
            s.drawn = true
            return Self.render(event)
        }
        if let line { writeStandardError("\r\u{1B}[2K" + line) }
    }

    /// Ends the bar's line.
    public func finish() {
        guard enabled, state.withLock({ $0.drawn }) else { return }
        writeStandardError("\n")
    }

    static func render(_ event: ProgressEvent) -> String {
        let width = 30
        guard let fraction = event.fraction, let total = event.total else {
            return "\(event.phase): \(event.completed) \(event.unit)"
        }
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let percent = Int(fraction * 100)
        return "\(event.phase) \(bar) \(percent)% (\(event.completed)/\(total) \(event.unit))"
    }
}

private func writeStandardError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(STDERR_FILENO, raw.baseAddress! + offset, raw.count - offset)
            if n <= 0 { return }
            offset += n
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Named places where crash tests kill the process (STYLE "Crash tests"): when the environment
/// variable `VDB_FAULT_POINT` names one, reaching it sends the process SIGKILL, exactly as a
/// power cut or `kill -9` would stop it there. Unset (always, outside tests) it costs one
/// comparison of a string read once.
public enum FaultPoint {
    /// The fault point this process dies at, if any.
    private static let armed: String? = getenv("VDB_FAULT_POINT").map { String(cString: $0) }

    /// Dies here if the environment names `name`.
    public static func hit(_ name: StaticString) {
        guard let armed, armed == name.description else { return }
        kill(getpid(), SIGKILL)
    }
}

import ArgumentParser
import VDBKit

/// Runs a command body, turning VDBKit errors into one line on stderr (prefixed with the tool's
/// name) and a sysexits code (DESIGN "Edges"). Argument-parser errors pass through untouched.
public func reportingErrors<T>(_ tool: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        printError("\(tool): " + ExitStatus.message(for: error))
        throw ExitCode(ExitStatus.code(for: error))
    }
}

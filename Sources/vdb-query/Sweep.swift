import ArgumentParser
import VDBKit

/// A search parameter `--sweep` can vary, and the index family it belongs to.
enum SweptParameter: String, CaseIterable {
    case ef, nprobe, rerank, leaves

    /// The family whose searches read it: a sweep over a library without one has no effect.
    var family: IndexKind {
        switch self {
        case .ef: .hnsw
        case .nprobe, .rerank: .ivfpq
        case .leaves: .kdtree
        }
    }

    func value(in parameters: SearchParameters) -> Int? {
        switch self {
        case .ef: parameters.ef
        case .nprobe: parameters.nprobe
        case .rerank: parameters.rerank
        case .leaves: parameters.leafBudget
        }
    }

    func set(_ value: Int, in parameters: inout SearchParameters) {
        switch self {
        case .ef: parameters.ef = value
        case .nprobe: parameters.nprobe = value
        case .rerank: parameters.rerank = value
        case .leaves: parameters.leafBudget = value
        }
    }
}

/// `--sweep ef=10,20,40`: one parameter and its values.
struct Sweep {
    var parameter: SweptParameter
    var values: [Int]

    /// Parses and checks the values against the ranges every search accepts
    /// (``SearchParameters/validate()``).
    init(parsing text: String) throws {
        let parts = text.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, let parameter = SweptParameter(rawValue: String(parts[0])) else {
            let names = SweptParameter.allCases.map { "\($0.rawValue)=…" }.joined(separator: ", ")
            throw ValidationError("--sweep takes \(names); '\(text)' names no parameter an index has")
        }
        let values = parts[1].split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
            throw ValidationError("--sweep \(parameter.rawValue) values must be comma-separated integers")
        }
        self.parameter = parameter
        self.values = values.map { $0! }
        for setting in settings(base: SearchParameters()) {
            do { try setting.validate() } catch { throw ValidationError("--sweep \(parameter.rawValue): \(error.message)") }
        }
    }

    /// `base` with the swept parameter set to each value.
    func settings(base: SearchParameters) -> [SearchParameters] {
        values.map { value in
            var setting = base
            parameter.set(value, in: &setting)
            return setting
        }
    }
}

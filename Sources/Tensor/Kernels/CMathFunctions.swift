#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Free libm functions reached from a scope where a member of the same name would shadow them.
enum CMathFunctions {
    static func exp(_ x: Double) -> Double { expImplementation(x) }
    static func erf(_ x: Double) -> Double { erfImplementation(x) }
    static func tanh(_ x: Double) -> Double { tanhImplementation(x) }
    static func pow(_ x: Double, _ y: Double) -> Double { powImplementation(x, y) }
}

private func expImplementation(_ x: Double) -> Double { exp(x) }
private func erfImplementation(_ x: Double) -> Double { erf(x) }
private func tanhImplementation(_ x: Double) -> Double { tanh(x) }
private func powImplementation(_ x: Double, _ y: Double) -> Double { pow(x, y) }

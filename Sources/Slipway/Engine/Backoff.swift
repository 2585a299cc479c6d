import SlipwayCore
import SlipwayPipeline

/// Exponential backoff with jitter between attempts of a step.
public enum Backoff {
    /// The most a retry can wait: `base × 2^(retry-1)`, capped at ``Step/maximumBackoff``.
    public static func ceiling(base: Duration, retry: Int) -> Duration {
        let factor = 1 << min(max(retry - 1, 0), 20)
        let raw = base * factor
        return raw > Step.maximumBackoff ? Step.maximumBackoff : raw
    }

    /// The delay before retry `retry` (1 for the first): half the ceiling, plus up to the other half
    /// at random ("equal jitter"), so that retries of many deploys do not arrive in lockstep.
    /// `jitter` is a number in 0..<1.
    public static func delay(base: Duration, retry: Int, jitter: Double) -> Duration {
        let ceiling = ceiling(base: base, retry: retry)
        return ceiling / 2 + (ceiling / 2) * min(max(jitter, 0), 1)
    }
}

import SlipwayCore
import SlipwayPipeline

/// The version of Slipway itself.
public enum SlipwayVersion {
    public static let current = "0.1.0"
}

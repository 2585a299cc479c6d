// What the command line and other users of Slipway see through `import Slipway`: the domain
// values and the pipeline model come with it.
@_exported public import SlipwayCore
@_exported public import SlipwayPipeline
// The run record's values and its store protocols (the SQL behind them stays in SlipwayStore).
@_exported public import SlipwayStore

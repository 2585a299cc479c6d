import SlipwayTestSupport

let packageRootForTests = packageRoot

"""Reading networks (one reader per format family), locating sites, bundled data and writing outputs."""

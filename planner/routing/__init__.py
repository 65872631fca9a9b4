"""Path algorithms: Dijkstra variants, ExDijkstra, SMR and MSP."""

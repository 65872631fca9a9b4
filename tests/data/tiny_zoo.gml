graph [
  Network "TinyZoo"
  node [
    id 0
    label "Alpha"
    Country "Netherlands"
    Longitude 4.9
    Internal 1
    Latitude 52.37
  ]
  node [
    id 1
    label "Beta"
    Country "Netherlands"
    Longitude 5.12
    Internal 1
    Latitude 52.09
  ]
  node [
    id 2
    label "Beta"
    Country "Netherlands"
    Longitude 5.12
    Internal 1
    Latitude 52.09
  ]
  node [
    id 3
    label "Peer"
    Internal 0
  ]
  node [
    id 4
    label "Gamma"
    Longitude 4.48
    Internal 1
    Latitude 51.92
  ]
  edge [
    source 0
    target 1
  ]
  edge [
    source 1
    target 2
  ]
  edge [
    source 0
    target 4
    length 80.5
  ]
  edge [
    source 0
    target 4
    length 61.0
  ]
  edge [
    source 3
    target 0
  ]
]

Feature: Swaps release the memory of what they replace
  Every swap loads a new version beside the old one and must then let the old one go. After any number
  of swaps, each worker holds exactly the version the catalog has in production, and the memory of its
  process, measured from outside, is back within a stated band of what it took before the swaps, however
  many versions came and went. Sizes are decimal megabytes; the models' weights really take that much
  memory. (Memory is compared before any inference: a model's first answer makes onnxruntime keep its
  working buffers, a one-off that is not a leak.)

  Scenario: After 6 swaps each worker holds only the production version, and its memory is back within 30 MB
    Given large demo versions "1" and "2" of 60 MB
    And a cluster with 2 workers serving demo version "1"
    And the cluster's workers have no memory budget
    And demo version "2" is registered in the catalog
    And the resident memory of every worker is measured
    When I swap demo between versions "2" and "1" 6 times
    Then every worker holds only the production version of demo, as the catalog says
    And the resident memory of every worker is within 30 MB of what it was before the swaps
    And the production version of demo is "1"

Feature: Several versions served at once
  As a platform engineer I keep three or more versions of a model loaded on the same workers: requests
  that name a version get that version's answers, also when they arrive at the same time. Each worker
  reports the memory of every version it holds, and that report is true: measured from outside the
  worker (its process's resident memory), loading versions takes at least 80 % of what it reports, and
  unloading one frees at least 80 % of what it reported for it, while the others keep serving. A load
  past a worker's memory budget is refused with 507. Sizes are decimal megabytes.

  Scenario: Three versions answer for themselves under concurrent requests
    Given the demo model with versions "1", "2" and "3"
    And a cluster with 2 workers serving demo version "1"
    And demo versions "2" and "3" are registered in the catalog
    When I load demo versions "2" and "3" alongside production
    Then every worker holds demo versions "1", "2" and "3" and reports the memory of each
    When 8 clients send 600 inference requests with varied inputs to demo versions "1", "2" and "3" by name
    Then every answer came from the version its request named, with that version's own outputs
    And 20 inference requests for demo are all answered by version "1"

  Scenario: Unloading one version frees its memory and the others keep serving
    Given the demo model with versions "1"
    And a cluster with 1 worker serving demo version "1"
    And large demo versions "4", "5" and "6" of 60 MB each are registered in the catalog
    When I load demo versions "4", "5" and "6" alongside production
    Then every worker holds demo versions "1", "4", "5" and "6" and reports the memory of each
    And the resident memory of every worker grew by at least 80 % of what it reports for the versions loaded
    When I unload demo version "5"
    Then the resident memory of every worker dropped by at least 80 % of what it reported for version "5"
    And no worker holds demo version "5"
    When 4 clients send 60 inference requests with varied inputs to demo versions "4" and "6" by name
    Then every answer came from the version its request named, with that version's own outputs

  Scenario: A version past the memory budget is refused and the others keep serving
    Given the demo model with versions "1"
    And a cluster with 1 worker with a memory budget of 100 MB serving demo version "1"
    And large demo versions "4" and "5" of 60 MB each are registered in the catalog
    When I load demo versions "4" alongside production
    And I try to load demo version "5" alongside production
    Then the load of demo version "5" is refused with 507, naming the memory budget
    And no worker holds demo version "5"
    When 4 clients send 40 inference requests with varied inputs to demo versions "1" and "4" by name
    Then every answer came from the version its request named, with that version's own outputs

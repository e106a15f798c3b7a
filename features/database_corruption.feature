Feature: The catalog survives a damaged or lost database
  The gateway keeps its model catalog in a database: a file on disk, or a PostgreSQL server. Disks
  fail and servers crash. When the file is damaged while the gateway runs, the gateway must notice
  it, say so in its log, keep serving from the catalog it holds in memory, repair the database from
  its last good backup (or rebuild it when there is none), and keep accepting new versions. When the
  database server is killed, changes are refused with a clear reason until it is back, and nothing
  is lost. In every case, no registration the gateway acknowledged may be missing afterwards, not
  even after the gateway restarts and reads its catalog back from the database alone.

  Background:
    Given the demo model with versions "1"

  Scenario Outline: The catalog database file is damaged (<damage>) while the gateway runs
    Given a cluster with 1 worker serving demo version "1"
    And the catalog holds 20 models
    And the gateway has backed up its catalog
    When the catalog database file is damaged by overwriting <damage>
    Then within 5 seconds the gateway reports its catalog database corrupt
    And 10 inference requests for demo are all answered by version "1"
    And the catalog lists every model whose registration was acknowledged
    And within 10 seconds the gateway has repaired its catalog database
    And the gateway says it restored its last backup
    When I register 5 more models
    Then every registration was acknowledged
    When the gateway is restarted
    Then the catalog lists every model whose registration was acknowledged

    Examples:
      | damage          |
      | its header      |
      | 3 of its pages  |

  Scenario: Without a good backup the gateway rebuilds its catalog database from memory
    Given a cluster with 1 worker serving demo version "1"
    And the catalog holds 10 models
    And the gateway has backed up its catalog
    When the catalog database file and its backup are both damaged
    Then within 5 seconds the gateway reports its catalog database corrupt
    And within 10 seconds the gateway has repaired its catalog database
    And the gateway says it rebuilt its catalog from memory
    When the gateway is restarted
    Then the catalog lists every model whose registration was acknowledged

  Scenario: Registrations racing the damage are either acknowledged and kept, or refused
    Given a cluster with 1 worker serving demo version "1"
    And the catalog holds 5 models
    And the gateway has backed up its catalog
    When new models are registered continuously while the catalog database file is damaged twice
    Then every registration was acknowledged or refused saying the catalog database is corrupt
    And within 5 seconds the gateway finds its catalog database sound
    When the gateway is restarted
    Then the catalog lists every model whose registration was acknowledged
    And no refused registration is listed

  Scenario: The PostgreSQL server holding the catalog is killed and restarted
    Given a cluster with 1 worker serving demo version "1" with its catalog in a PostgreSQL server
    And the catalog holds 10 models
    When the catalog database server is killed
    Then within 5 seconds the gateway reports its catalog database unavailable
    And 10 inference requests for demo are all answered by version "1"
    And the catalog lists every model whose registration was acknowledged
    When I register 3 more models
    Then every registration was refused because the catalog database is unavailable
    When the catalog database server is restarted
    Then within 10 seconds the gateway has repaired its catalog database
    When I register 3 more models
    Then every registration was acknowledged
    When the gateway is restarted
    Then the catalog lists every model whose registration was acknowledged
    And no refused registration is listed

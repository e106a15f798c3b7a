Feature: Nobody joins or steers the cluster without a credential
  A worker sees every client's inputs and decides their answers; the admin API steers the whole cluster.
  Workers join with the join token (never the admin token), each worker may only heartbeat for or remove
  itself, and the admin API takes only the admin token. Whoever is refused is told why, and the gateway
  counts and records the attempt. Tokens never show on a command line, and the join token can be
  replaced while the cluster runs.

  Background:
    Given the demo model with versions "1"

  Scenario Outline: A stranger presenting <credential> cannot register a worker
    Given a cluster with 1 worker serving demo version "1"
    When a stranger presenting <credential> registers a worker
    Then the gateway refuses it with <status> saying "<reason>"
    And the gateway counted the refusal and recorded it in its audit trail
    And the gateway lists only the cluster's workers

    Examples:
      | credential      | status | reason                              |
      | no token        | 401    | missing join token                  |
      | a wrong token   | 401    | wrong join token                    |
      | the admin token | 403    | the admin token is not a join token |

  Scenario Outline: A stranger presenting <credential> cannot <action> a worker
    Given a cluster with 1 worker serving demo version "1"
    When a stranger presenting <credential> tries to <action> worker-1
    Then the gateway refuses it with <status> saying "<reason>"
    And the gateway counted the refusal and recorded it in its audit trail
    And worker-1 is still listed and serves demo

    Examples:
      | credential      | action        | status | reason                              |
      | no token        | remove        | 401    | missing join token                  |
      | a wrong token   | remove        | 401    | wrong join token                    |
      | the admin token | remove        | 403    | the admin token is not a join token |
      | the join token  | remove        | 401    | missing worker token                |
      | a wrong token   | heartbeat for | 401    | wrong join token                    |

  Scenario: A worker may only heartbeat for or remove itself
    Given a cluster with 1 worker serving demo version "1"
    And an insider holding the join token registers a worker of its own
    When the insider tries to remove worker-1
    Then the gateway refuses it with 403 saying "a worker may only deregister itself"
    And the gateway counted the refusal and recorded it in its audit trail
    When the insider tries to heartbeat for worker-1
    Then the gateway refuses it with 403 saying "a worker may only heartbeat itself"
    And worker-1 is still listed and serves demo
    And the insider can remove its own worker

  Scenario Outline: The admin API refuses <credential>
    Given a cluster with 1 worker serving demo version "1"
    When a client calls the admin API presenting <credential>
    Then the gateway refuses it with <status> saying "<reason>"
    And the gateway counted the refusal and recorded it in its audit trail

    Examples:
      | credential     | status | reason                                |
      | no token       | 401    | missing admin token                   |
      | a wrong token  | 401    | wrong admin token                     |
      | the join token | 403    | a join token cannot use the admin API |

  Scenario Outline: Clients' traffic never reaches a worker that presented <credential>
    Given a cluster with 1 worker serving demo version "1"
    And a stranger's worker presenting <credential> keeps trying to register
    Then 30 inference requests for demo are all answered by version "1"
    And the stranger's worker received no inference request
    And the gateway lists only the cluster's workers

    Examples:
      | credential      |
      | no token        |
      | a wrong token   |
      | the admin token |

  Scenario: A worker with the join token still joins
    Given a cluster with 1 worker serving demo version "1"
    When 2 more workers start at the same time
    Then the gateway lists 3 workers
    And the gateway's registry matches the running workers

  Scenario: The join token is replaced without a restart; the old one works for the overlap only
    Given a cluster with 1 worker serving demo version "1" and a join token overlap of 3 seconds
    When the join token is rotated
    Then a worker presenting the old join token is still accepted
    And within 6 seconds a worker presenting the old join token is refused with 401
    And worker-1 keeps its registration for 4 heartbeat intervals
    And the gateway recorded the rotation of the join token in its audit trail
    When 1 more workers start at the same time
    Then the gateway lists 2 workers

  Scenario: No service's command line shows a token
    Given a cluster with 2 workers serving demo version "1"
    Then no service's command line shows the admin token or the join token

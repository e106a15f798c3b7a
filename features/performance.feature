Feature: Latency under a steady load
  Users send requests at a steady rate. Every request must be processed, none may time out, and the
  average and the 99th percentile of the latency users see must stay under the stated limits. The
  requests leave on schedule whatever the answers take, so a slow cluster cannot hide by slowing the
  sender down; the 99th percentile is judged on at least 100 requests.

  Background:
    Given the demo model with versions "1"

  Scenario Outline: <count> requests over <seconds> seconds on <workers>
    Given a cluster with <workers> serving demo version "1"
    When <count> requests for demo are sent evenly over <seconds> seconds
    Then all <count> requests were answered successfully
    And none of them timed out, no 408 and no 504
    And their average latency is below <average> ms
    And their p99 latency is below <p99> ms

    Examples:
      | workers   | count | seconds | average | p99 |
      | 1 worker  | 200   | 10      | 100     | 500 |
      | 2 workers | 600   | 15      | 100     | 500 |

  Scenario: Inference adds little to the front door's own round trip
    Given the target serves demo version "1"
    When 100 inference requests for demo alternate with as many health checks
    Then the median inference latency is less than 30 ms above the median health check
    And the median inference latency is below 60 ms

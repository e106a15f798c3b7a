Feature: Time-based routing
  As an operator I route a model by the clock: office hours on weekdays to one version, weekends to
  another, everything else to a third, in a stated time zone. The gateway's clock is really shifted (it
  is restarted with a clock offset it reads at start; see docs/architecture.md), and the switch happens
  at the boundary itself, by the gateway's clock.

  Background:
    Given the demo model with versions "1", "2" and "3"
    And a cluster with 2 workers serving demo version "1"
    And demo versions "2" and "3" are registered in the catalog
    And demo is served by version "3" all day on weekends
    And demo is served by version "2" from 09:00 to 17:00 on weekdays
    And demo follows these time rules in the Asia/Tokyo time zone, and version "1" otherwise

  Scenario: Office hours on a weekday go to the office-hours version
    When the gateway's clock is set to Wednesday 10:30 in Asia/Tokyo
    Then 10 inference requests for demo are all answered by version "2"

  Scenario: A weekend goes to the weekend version
    When the gateway's clock is set to Saturday 10:30 in Asia/Tokyo
    Then 10 inference requests for demo are all answered by version "3"

  Scenario: Outside every rule the default version answers
    When the gateway's clock is set to Wednesday 20:00 in Asia/Tokyo
    Then 10 inference requests for demo are all answered by version "1"

  Scenario: The switch at the end of office hours happens at 17:00 sharp
    When the gateway's clock is set to Wednesday 16:59:45 in Asia/Tokyo
    Then requests for demo are answered by version "2" until 17:00:00 and by version "1" from then on, by the gateway's clock

  Scenario: The switch into the weekend happens at midnight
    When the gateway's clock is set to Friday 23:59:45 in Asia/Tokyo
    Then requests for demo are answered by version "1" until 00:00:00 and by version "3" from then on, by the gateway's clock

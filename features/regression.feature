Feature: Latency regression against a baseline
  The latency of a build is compared with a baseline of the same load: a regression is a median well
  above the baseline's (by the stated effect, +50 % over its slowest run) that a Mann-Whitney U test
  also finds significant, and the numbers are shown either way. The unchanged server is no regression
  against a baseline of itself (two runs: one calm moment of a shared machine makes no bar). Run with --baseline FILE, the scenario is also compared with its entry
  in that file (recorded by an earlier run with --save-baseline), so CI compares today with yesterday.

  Background:
    Given the demo model with versions "1"
    And the target serves demo version "1"

  Scenario: The server is no regression against its own baseline
    Given a latency baseline of demo is taken over 2 runs of the "latency_probe" load profile
    When the "latency_probe" load profile runs against demo
    Then latency has not regressed against the baseline

// The text of `slow-proxy --help`: every flag, the delay forms, the faults, ctl, and examples.

export const HELP = `slow-proxy: a slow, faulty TCP proxy in front of a service (Postgres, Redis, LDAP,
any TCP). It records every request/response call: how long the app waited and
whether it gave up. Stop it with Ctrl-C for the report.

Usage
  slow-proxy --target HOST:PORT [options]   run the proxy until Ctrl-C / SIGTERM
  slow-proxy ctl COMMAND [ARGS]             steer a running proxy (see Control)
  slow-proxy demo                           a 10-second demo, nothing to set up

Proxy options (the GitHub Action's inputs, same names, same values)
  --target HOST:PORT      the service, e.g. localhost:5432 ([::1]:5432 for IPv6); required
  --port N                port to listen on; 0 (default) picks a free one
  --listen-address A      address to listen on (default 127.0.0.1; 0.0.0.0 for containers)
  --delay POLICY          how long to hold traffic (default 0ms); see Delay policies
  --delay-per X           what one delay draw covers: call (default), chunk or connection
  --direction D           what is held: upstream (requests, default), downstream (responses)
                          or both
  --fault SPEC            a fault (see Faults); repeat the flag for several
  --seed N                seed of every random draw, 0-4294967295 (default: picked and
                          printed, so a run can be replayed)
  --max-wait D            gate: exit 1 if the app waited longer than D on any call, e.g. 2s
  --baseline FILE         stats file of an earlier run: gate on growth of the p95 wait
                          (a missing file is a warning)
  --max-regression P      largest allowed growth of the p95 wait, default 20%
  --name N                label for the report and the file names (default: from the target)
  --log-payload           put redacted payload previews in the traffic log
  --pcap                  also write a pcap capture (not redacted)
  --stats-file F          where the statistics JSON goes (rewritten every second)
  --log-file F            where the traffic log goes (JSON Lines)
  --pcap-file F           where the pcap capture goes; implies --pcap
  --control-port N        serve the control API on 127.0.0.1:N (0 picks a free port);
                          without this flag there is no control API
  -h, --help              this text
  -V, --version           the version

  Files not named go to a new folder in the OS temp dir:
  <tmp>/slow-proxy-<name>-XXXXXX/{stats.json,traffic.jsonl,traffic.pcap}.
  Their paths are printed at the start and after the report.

Delay policies (a call = one request and its response)
  500ms                               every call held 500 ms
  100ms..2s                           uniform between 100 ms and 2 s
  ramp(from=0ms, step=250ms, to=5s)   +250 ms per call up to 5 s, then back down, and again
  normal(mean=300ms, stddev=50ms)     normal distribution (never below 0)
  lognormal(median=200ms, p99=2s)     mostly fast, with a long tail
  spike(every=10, delay=30s)          every 10th call held 30 s (else=... for the others)
  phases(0s=0ms, 30s=2s, 90s=0ms)     by time since the proxy started
  200ms + 0ms..50ms                   terms joined with + add up
  Durations: 250ms, 1.5s, 2m (ms, s or m). Sizes: 64B, 10KB, 1MiB.

Faults (one per --fault; scopes probability=25%, direction=..., calls=10..20)
  connect-delay 2s          hold the upstream connect
  hang                      read the request, never forward it
  reset after=500ms         reset (RST) the client after 500 ms
  close after=1s            close (FIN) the client after 1 s
  refuse                    reset every new client at once: the service is down
  bandwidth 64KB/s          limit the rate each way
  slow-close 2s             hold the final FIN 2 s
  slice 64B delay=5ms       forward in 64-byte pieces, 5 ms apart
  limit-data 10KB           close after 10 KB of response

Control (only with --control-port; loopback only, every request needs the token)
  The proxy prints: export SLOW_PROXY_CONTROL_URL=... SLOW_PROXY_TOKEN=...
  Run that in another shell, then:
  slow-proxy ctl stats                         the statistics so far (JSON)
  slow-proxy ctl health                        is it up, is it paused
  slow-proxy ctl delay 5s                      new delay policy for calls from now on
  slow-proxy ctl faults "hang" "reset after=1s"
                                               replace the faults (one per argument) for new
                                               connections; no argument clears them
  slow-proxy ctl pause                         hold all traffic
  slow-proxy ctl resume                        let it flow again
  slow-proxy ctl reset                         zero the statistics
  --url URL and --token TOKEN override the environment. Changes are noted in the traffic log.

Exit codes
  0  stopped, every gate passed        1  a gate failed, the proxy could not start,
  2  bad flags or values                  or a ctl request failed
  A second Ctrl-C exits at once (130).

Examples
  slow-proxy --target localhost:5432 --port 6432 --delay 300ms
  slow-proxy --target localhost:6379 --delay 'lognormal(median=20ms, p99=1s)' --max-wait 2s
  slow-proxy --target localhost:389 --fault 'reset after=500ms probability=25%' --seed 7
  slow-proxy --target localhost:5432 --control-port 0
      then, in another shell: slow-proxy ctl delay 'ramp(from=0ms, step=500ms, to=5s)'
  slow-proxy --target localhost:5432 --max-wait 2s --baseline last/stats.json --stats-file stats.json
`;

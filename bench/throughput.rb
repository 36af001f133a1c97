# frozen_string_literal: true

# Benchmark 5: throughput of a Puma cluster app that evaluates 10 flags per
# request, against the same app without the evaluations.
#
# Two Puma 5.6 servers run at once on loopback (cluster mode, 2 workers,
# 4 threads each, preload_app!), one with a live client (file: source, 1,000
# flags, created in the master before the workers fork) and one without. wrk
# (2 threads, 16 connections) drives one server at a time for DURATION
# seconds, alternating between them for PAIRS pairs of runs (the first run of
# each pair alternates too); the figures are medians over the pairs of the
# requests per second and of the p99 latency wrk reports. The ratio of
# requests per second is the median of the pairs' ratios (each pair ran
# side by side in time, so drift and other load hit both alike).
#
# Beside it, the CPU time the server's processes (master and workers, from
# /proc/<pid>/stat) spent per request served: on a machine where wrk and the
# workers share the CPUs, requests per second also move with scheduling,
# while CPU per request is the cost the evaluations add.
#
# Unless HTTPS=0, two more servers run the same app with a client of the
# real Unleash server through nginx (bench/server.rb) instead of the file,
# over plain HTTP and over TLS with a CA made in the run; each is driven in
# the same rounds (order rotating) and compared with "no evaluations" as
# the file's is, and https with http.
#
# Goal: under 3% fewer requests per second and no change in p99 (taken as at
# most 10% higher: more than the p99 of one server varies from run to run
# here is not a change this benchmark can see).
#
# PIN=1 runs the servers on the first CPU and wrk on the second (taskset), so
# that the load generator does not take the server's CPU: the server is then
# bound by its own CPU, and the ratio of requests per second is the ratio of
# the cost of a request.
#
#   ruby bench/throughput.rb      (or: rake bench:throughput)
#   DURATION=10 PAIRS=3 ruby bench/throughput.rb
#   PIN=1 DURATION=5 PAIRS=6 ruby bench/throughput.rb
#   HTTPS=0 ruby bench/throughput.rb   (no server: the file client only)
#
# Needs wrk (Debian: apt-get install wrk).
require_relative "support"
require_relative "server"
require_relative "../support/loopback"
require "socket"
require "fileutils"
require "rbconfig"

DURATION = Bench.env_number("DURATION", 10).to_i
PAIRS = Bench.env_number("PAIRS", 3).to_i
CONNECTIONS = 16
P99_TOLERANCE = 10 # percent
PIN = ENV["PIN"] == "1"
SERVER_CPUS = PIN ? %w[taskset -c 0] : [].freeze
WRK_CPUS = PIN ? %w[taskset -c 1] : [].freeze
WRK = Bench.executable("wrk", "bench/throughput.rb")
DEADLINE = 30
SERVER_KINDS = Bench.server_variants? ? %i[http https] : []
LABELS = { with: "10 evaluations per request", without: "no evaluations", http: "10 evaluations, http server",
           https: "10 evaluations, https server" }.freeze

def start_puma(port, kind, flags_path, log, server)
  env = { "FORKFLAG_BENCH_EVALUATE" => kind == :without ? "0" : "1", "FORKFLAG_BENCH_FLAGS" => flags_path }
  if SERVER_KINDS.include?(kind)
    env.merge!("FORKFLAG_BENCH_URL" => server.url(kind), "FORKFLAG_BENCH_TOKEN" => server.unleash.client_token)
    env["FORKFLAG_BENCH_CA"] = server.proxy.ca_file if kind == :https
  end
  pid = Process.spawn(env, *SERVER_CPUS, "puma", "--workers", "2", "--threads", "4:4", "--preload", "--bind",
                      "tcp://127.0.0.1:#{port}", "--environment", "production",
                      File.expand_path("throughput/config.ru", __dir__),
                      out: log, err: log, pgroup: true)
  deadline = Time.now + DEADLINE
  until Time.now > deadline
    begin
      TCPSocket.new("127.0.0.1", port).close
      return pid
    rescue SystemCallError
      sleep 0.1
    end
  end
  raise "puma on port #{port} did not start within #{DEADLINE} s (see #{log})"
end

# CPU seconds used so far by the processes of a server's process group.
def group_cpu_seconds(pgid)
  ticks = Dir.children("/proc").sum do |entry|
    next 0 unless entry.match?(/\A\d+\z/)

    fields = File.read("/proc/#{entry}/stat").split(") ", 2).last.split
    fields[2].to_i == pgid ? fields[11].to_i + fields[12].to_i : 0 # pgrp, utime, stime
  rescue SystemCallError
    0
  end
  ticks / Etc.sysconf(Etc::SC_CLK_TCK).to_f
end

# One wrk run against a server: [req/s, p99 ms, errors, CPU us per request].
def wrk(port, pgid)
  cpu_before = group_cpu_seconds(pgid)
  out = IO.popen([*WRK_CPUS, WRK, "--threads", "2", "--connections", CONNECTIONS.to_s, "--duration", "#{DURATION}s",
                  "--latency", "http://127.0.0.1:#{port}/?user-42"], err: %i[child out], &:read)
  rps = Float(out[%r{Requests/sec:\s+([\d.]+)}, 1] || raise("wrk said: #{out}"))
  p99 = out.match(/^\s+99%\s+([\d.]+)(us|ms|s)$/) || raise("wrk printed no p99: #{out}")
  errors = out[/Non-2xx or 3xx responses: (\d+)/, 1].to_i + out[/Socket errors: .*/].to_s.scan(/\d+/).sum(&:to_i)
  cpu = group_cpu_seconds(pgid) - cpu_before
  requests = Integer(out[/(\d+) requests in/, 1] || raise("wrk printed no request count: #{out}"))
  [rps, Float(p99[1]) * { "us" => 0.001, "ms" => 1, "s" => 1000 }.fetch(p99[2]), errors, cpu * 1e6 / requests]
end

def stop_puma(pid)
  Process.kill(:TERM, -pid)
  deadline = Time.now + DEADLINE
  sleep 0.1 while Process.waitpid(pid, Process::WNOHANG).nil? && Time.now < deadline
  Process.kill(:KILL, -pid)
  Process.wait(pid)
rescue Errno::ESRCH, Errno::ECHILD
  nil
end

tmp = File.expand_path("../tmp/bench", __dir__)
FileUtils.mkdir_p(tmp)
flags_path = File.join(tmp, "throughput-flags.json")
File.write(flags_path, Bench.payload(Bench.mixed_features(1000)))
servers = {}
kinds = %i[with without] + SERVER_KINDS
ports = kinds.to_h { |kind| [kind, Loopback.free_port] }
server = Bench.server(Bench.request_names) unless SERVER_KINDS.empty?
begin
  ports.each do |name, port|
    servers[name] = start_puma(port, name, flags_path, File.join(tmp, "puma-#{name}.log"), server)
  end
  puts "bench/throughput.rb: puma #{`puma --version`.split.last} cluster (2 workers x 4 threads, preload), " \
       "wrk 2 threads #{CONNECTIONS} connections #{DURATION} s per run, #{PAIRS} alternating pairs" \
       "#{PIN ? "; servers on CPU 0, wrk on CPU 1" : ""}"
  puts Bench.machine
  puts "http and https servers: #{server.describe}" if server
  ports.each_value { |port| IO.popen([WRK, "--duration", "2s", "http://127.0.0.1:#{port}/?warm-up"], &:read) }
  runs = kinds.to_h { |kind| [kind, []] }
  PAIRS.times do |pair|
    kinds.rotate(pair % kinds.size).each do |name|
      runs[name] << wrk(ports[name], servers[name])
      $stderr.print "."
    end
  end
  warn ""
  rps = runs.transform_values { |r| Bench.median(r.map(&:first)) }
  p99 = runs.transform_values { |r| Bench.median(r.map { |x| x[1] }) }
  errors = runs.transform_values { |r| r.sum { |x| x[2] } }
  cpu = runs.transform_values { |r| Bench.median(r.map { |x| x[3] }) }
  ratios = runs[:with].zip(runs[:without]).map { |w, o| w[0] / o[0] }
  cpu_ratios = runs[:with].zip(runs[:without]).map { |w, o| w[3] / o[3] }
  loss = 100.0 * (1 - Bench.median(ratios))
  p99_change = 100.0 * ((p99[:with] / p99[:without]) - 1)
  puts
  Bench.table(
    ["", "req/s", "p99 ms", "errors", "CPU us/req", "runs (req/s)"],
    kinds.map do |kind|
      [LABELS.fetch(kind), format("%.0f", rps[kind]), format("%.2f", p99[kind]), errors[kind],
       format("%.1f", cpu[kind]), runs[kind].map { |r| r[0].round }.join(" ")]
    end
  )
  puts
  puts "requests per second with / without: #{format("%.3f", Bench.median(ratios))} (median of the pairs: " \
       "#{ratios.map { |r| format("%.3f", r) }.join(" ")}); #{format("%.1f", loss)}% fewer"
  puts "server CPU per request with / without: #{format("%.3f", Bench.median(cpu_ratios))} (pairs: " \
       "#{cpu_ratios.map { |r| format("%.3f", r) }.join(" ")}); " \
       "#{format("%+.1f", 100.0 * (Bench.median(cpu_ratios) - 1))}%, " \
       "#{format("%.2f", cpu[:with] - cpu[:without])} us per request"
  puts "p99 with / without: #{format("%.2f", p99[:with] / p99[:without])} (#{format("%+.1f", p99_change)}%)"
  SERVER_KINDS.each do |kind|
    paired = runs[kind].zip(runs[:without]).map { |w, o| [w[0] / o[0], w[3] / o[3]] }
    puts "#{kind} server, with / without: requests per second #{format("%.3f", Bench.median(paired.map(&:first)))}, " \
         "CPU per request #{format("%.3f", Bench.median(paired.map(&:last)))}, p99 " \
         "#{format("%.2f", p99[kind] / p99[:without])}"
  end
  unless SERVER_KINDS.empty?
    tls = runs[:https].zip(runs[:http]).map { |s, p| [s[0] / p[0], s[3] / p[3]] }
    puts "https / http (same rounds): requests per second #{format("%.3f", Bench.median(tls.map(&:first)))}, " \
         "CPU per request #{format("%.3f", Bench.median(tls.map(&:last)))}, p99 " \
         "#{format("%.2f", p99[:https] / p99[:http])}"
  end
  puts "goal: under 3% fewer requests per second: #{Bench.verdict(loss < 3)}; no change in p99 " \
       "(taken as at most #{P99_TOLERANCE}% higher, the run-to-run spread here): " \
       "#{Bench.verdict(p99_change <= P99_TOLERANCE)}"
ensure
  servers.each_value { |pid| stop_puma(pid) }
end

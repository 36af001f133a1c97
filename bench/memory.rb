# frozen_string_literal: true

# Benchmark 4: memory. A 10,000-flag payload, a client created before forking
# 8 workers, and the private memory each worker holds because of forkflag.
#
# Part 1, workers. Three masters are forked from this process: one creates a
# live client from a flags file (file: source, background thread running,
# ready), one a client from the same payload given as bootstrap: (nothing to
# poll), and one creates none; each then forks 8 workers. Every worker
# evaluates all 10,000 flags (the worker without a client walks the same
# names), so every per-flag counter has been written. The figure per worker is
# Private_Clean + Private_Dirty from /proc/<pid>/smaps_rollup; forkflag's share
# is the median worker with a client minus the median worker without, read at
# the same moments:
#   - after the first pass of evaluations,
#   - after a second pass (steady state),
#   - after a refresh that brings no change (every worker calls
#     client.refresh: the file is read again, its fingerprint matches, no new
#     snapshot is built) and another pass.
#
# Part 2, snapshot size. In fresh processes (alternating with and without),
# the resident memory added by loading the payload into a client
# (bootstrap:, no thread) after the JSON text is already in memory, with
# freed heap returned to the system (malloc_trim) before each reading.
#
# Part 3, TLS (unless HTTPS=0). Two more masters create a live client of the
# real Unleash server through nginx (bench/server.rb), one over plain HTTP
# and one over TLS with a CA made in the run, and fork 8 workers each, read
# at the same moments as part 1. Their workers evaluate the server's 10
# flags as many times as the others evaluate flags, and each waits for its
# own thread's first refresh (its own connection: for https, a TLS
# handshake) before the first reading. "https - http" is what TLS adds to
# a worker. Read it with care: each worker writes about 2 MiB of its
# master's main heap (Ruby's side), and that moves by up to hundreds of KiB
# between two masters from run to run, in either direction, whatever the
# TLS; bench/fork.rb's per-child figure (one master per kind, 200 children)
# is the steadier measure of what TLS adds.
#
# Goals: under 5% of the snapshot's size per worker while the configuration is
# unchanged; the compiled snapshot no larger than 2x the JSON; https adds at
# most 64 KiB per worker over http.
#
#   ruby bench/memory.rb       (or: rake bench:memory)
#   HTTPS=0 ruby bench/memory.rb   (no server: parts 1 and 2 only)
require_relative "support"
require_relative "server"
require "fileutils"
require "fiddle"
require "rbconfig"

FLAGS = Bench.env_number("FLAGS", 10_000).to_i
WORKERS = Bench.env_number("WORKERS", 8).to_i
SOME = Bench.env_number("SOME_FLAGS", 100).to_i
SIZE_RUNS = Bench.env_number("SIZE_RUNS", 5).to_i
DEADLINE = 30
SERVER_KINDS = Bench.server_variants? ? %i[http https] : []
TLS_GOAL_KB = 64

MALLOC_TRIM = Fiddle::Function.new(Fiddle::Handle::DEFAULT["malloc_trim"], [Fiddle::TYPE_SIZE_T], Fiddle::TYPE_INT)

def rss_kb(pid = Process.pid)
  Integer(File.read("/proc/#{pid}/status")[/^VmRSS:\s+(\d+) kB/, 1])
end

def read_line(io, what)
  raise "no answer from #{what} within #{DEADLINE} s" unless io.wait_readable(DEADLINE)

  io.gets || raise("#{what} closed its pipe")
end

# A worker: answers commands on its pipes. A client of a server evaluates
# its flags in turn, `count` evaluations in all, and waits for its own
# thread's first refresh.
def serve(commands, results, client, names, server: false)
  ctx = { userId: "user-7", environment: "production", properties: { plan: "plan-3", version: "1.4.0" } }
  while (command = commands.gets&.chomp)
    case command
    when /\Aeval (\d+)\z/
      some = names.first(Integer(Regexp.last_match(1)))
      if client
        some.each { |name| client.enabled?(name, ctx) }
      else
        some.count { |name| name == ctx } # the same walk, nothing allocated
      end
      own_refresh(client) if server
    when "refresh"
      client&.refresh(timeout: DEADLINE)
    else break
    end
    results.write("done\n")
  end
end

# Waits until the client's thread in this process has refreshed once (its
# inherited flags are current already, so ready? says nothing here). Looks
# seldom: each look allocates (the stats Hash), writing heap pages.
def own_refresh(client)
  deadline = Time.now + DEADLINE
  sleep 0.05 until client.stats[:refreshes].positive? || Time.now > deadline
  raise "no refresh of its own within #{DEADLINE} s" unless client.stats[:refreshes].positive?
end

# Forks a master (with or without a client) that forks the workers; returns
# the master's pid and one [commands, results] pipe pair per worker.
def start_group(kind, flags_path, names, server = nil)
  pipes = Array.new(WORKERS) { [IO.pipe, IO.pipe] }
  pids_r, pids_w = IO.pipe
  master = fork do
    pids_r.close
    client = nil
    case kind
    when :file
      client = Forkflag::Client.new(file: flags_path, backup_path: false, disable_metrics: true)
      client.enabled?(names.first)
      abort "the client is not ready" unless client.wait_until_ready(DEADLINE)
    when :bootstrap
      client = Bench.local_client(File.read(flags_path))
      client.enabled?(names.first)
    when *SERVER_KINDS
      client = server.client(kind)
      client.enabled?(server.names.first)
      abort "the client is not ready" unless client.wait_until_ready(DEADLINE)
    end
    of_server = SERVER_KINDS.include?(kind)
    # The server's flags in turn, as many as the others' names: made here,
    # shared with the workers as `names` is.
    names = server.names.cycle.first(names.size) if of_server
    GC.start
    workers = pipes.map do |(commands_r, _), (_, results_w)|
      fork { serve(commands_r, results_w, client, names, server: of_server) || exit!(0) }
    end
    pids_w.write("#{workers.join(" ")}\n")
    workers.each { |pid| Process.wait(pid) }
    exit!(0)
  end
  pids_w.close
  worker_pids = read_line(pids_r, "a master").split.map { |pid| Integer(pid) }
  pids_r.close
  ends = pipes.map { |(_, commands_w), (results_r, _)| [commands_w, results_r] }
  { master: master, workers: worker_pids, pipes: ends }
end

def command(groups, what)
  groups.each_value do |group|
    # All workers of a group work at once; then every answer is read.
    group[:pipes].each { |commands, _| commands.write("#{what}\n") }
    group[:pipes].each { |_, results| read_line(results, "a worker") } # rubocop:disable Style/CombinableLoops
  end
end

def stop(group)
  group[:pipes].each do |commands, results|
    commands.close unless commands.closed?
    results.close unless results.closed?
  end
  deadline = Time.now + DEADLINE
  sleep 0.05 while Process.waitpid(group[:master], Process::WNOHANG).nil? && Time.now < deadline
  ([group[:master]] + group[:workers]).each do |pid|
    Process.kill(:KILL, pid)
  rescue Errno::ESRCH
    nil
  end
  Process.wait(group[:master]) rescue nil # rubocop:disable Style/RescueModifier
end

# Part 2: resident memory added by compiling the payload, measured in a fresh
# Ruby process (this script run with --size).
def snapshot_kb(json_path, with_client)
  out = IO.popen([RbConfig.ruby, __FILE__, "--size", with_client ? "with" : "without", json_path], &:read)
  Integer(out[/^delta (-?\d+)$/, 1] || raise("the sizing process failed: #{out}"))
end

def measure_size(mode, json_path)
  json = File.read(json_path)
  GC.start
  MALLOC_TRIM.call(0)
  before = rss_kb
  client = (Bench.local_client(json) if mode == "with")
  GC.start
  MALLOC_TRIM.call(0)
  puts "delta #{rss_kb - before}"
  client&.close(timeout: 1)
end

if ARGV.first == "--size"
  measure_size(ARGV[1], ARGV[2])
  exit(0)
end

def kb(value) = format("%.0f", value)

begin
  flags_path = File.expand_path("../tmp/bench/flags-#{FLAGS}.json", __dir__)
  FileUtils.mkdir_p(File.dirname(flags_path))
  json = Bench.payload(Bench.mixed_features(FLAGS))
  File.write(flags_path, json)
  names = FLAGS.times.map { |i| format("flag-%05d", i) }
  puts "bench/memory.rb: #{FLAGS} flags (#{json.bytesize / 1024} KiB of JSON), #{WORKERS} workers per master"
  puts Bench.machine

  # Part 2 first, in fresh processes, alternating.
  sizes = { with: [], without: [] }
  SIZE_RUNS.times do
    sizes[:with] << snapshot_kb(flags_path, true)
    sizes[:without] << snapshot_kb(flags_path, false)
  end
  snapshot = Bench.median(sizes[:with]) - Bench.median(sizes[:without])
  json_kb = json.bytesize / 1024.0

  server = Bench.server(Bench.request_names) unless SERVER_KINDS.empty?
  puts "http and https clients: #{server.describe}" if server
  kinds = { with: :file, bootstrap: :bootstrap, without: :none }.merge(SERVER_KINDS.to_h { |k| [k, k] })
  groups = kinds.transform_values { |kind| start_group(kind, flags_path, names, server) }
  begin
    readings = {}
    read = -> { groups.transform_values { |g| g[:workers].map { |p| Bench.private_kb(p) } } }
    command(groups, "eval #{SOME}")
    readings["#{SOME} flags evaluated"] = read.call
    command(groups, "eval #{SOME}")
    readings["#{SOME} flags, second pass (steady)"] = read.call
    command(groups, "refresh")
    command(groups, "eval #{SOME}")
    readings["#{SOME} flags, after a no-change refresh"] = read.call
    command(groups, "eval #{FLAGS}")
    readings["all #{FLAGS} flags evaluated"] = read.call
    command(groups, "refresh")
    command(groups, "eval #{FLAGS}")
    readings["all #{FLAGS}, after a no-change refresh"] = read.call
  ensure
    groups.each_value { |g| stop(g) }
  end

  puts
  puts "Part 1: private memory per worker (KiB, Private_Clean + Private_Dirty, median of #{WORKERS})"
  rows = readings.map do |moment, by_group|
    with, bootstrap, without = %i[with bootstrap without].map { |g| Bench.median(by_group[g]) }
    added = with - without
    [moment, kb(with), kb(bootstrap), kb(without), kb(added), format("%.1f%%", 100.0 * added / snapshot),
     Bench.verdict(added < 0.05 * snapshot), kb(bootstrap - without),
     format("%.1f%%", 100.0 * (bootstrap - without) / snapshot)]
  end
  Bench.table(["", "file client", "bootstrap", "no client", "forkflag", "of snapshot", "goal < 5%",
               "bootstrap only", "of snapshot"], rows)
  puts "file client: live thread watching the flags file; bootstrap: same flags from bootstrap:, no source to poll"
  puts
  puts "Part 2: compiled snapshot (RSS added by loading it in a fresh process; medians of #{SIZE_RUNS})"
  Bench.table(
    ["", "KiB"],
    [["JSON text", kb(json_kb)],
     ["RSS delta with a client", kb(Bench.median(sizes[:with]))],
     ["RSS delta without (same steps)", kb(Bench.median(sizes[:without]))],
     ["compiled snapshot", kb(snapshot)],
     ["snapshot / JSON", format("%.2fx", snapshot / json_kb)]]
  )
  puts
  puts "goal: under 5% of the snapshot per worker while the configuration is unchanged (file client): " \
       "#{rows.map { |r| "#{r[0]}: #{r[6]}" }.join("; ")}"
  puts "goal: compiled snapshot no larger than 2x the JSON: #{Bench.verdict(snapshot <= 2 * json_kb)} " \
       "(#{format("%.2fx", snapshot / json_kb)})"
  puts "where it goes: cargo bench --locked -p forkflag_core --bench snapshot_size -- #{flags_path}"
  unless SERVER_KINDS.empty?
    tls_rows = readings.map do |moment, by_group|
      http, https = %i[http https].map { |g| Bench.median(by_group[g]) }
      [moment, kb(http), kb(https), format("%+.0f", https - http), Bench.verdict(https - http <= TLS_GOAL_KB)]
    end
    puts
    puts "Part 3: a client of the server over http and over https (KiB per worker, median of #{WORKERS}; its " \
         "workers evaluate the server's #{server.names.size} flags in turn, as many times as the others evaluate " \
         "flags; the spread between two masters is larger than the goal: see bench/fork.rb)"
    Bench.table(["", "http client", "https client", "https - http", "goal <= #{TLS_GOAL_KB}"], tls_rows)
    puts "goal: https adds at most #{TLS_GOAL_KB} KiB per worker over http: " \
         "#{tls_rows.map { |r| "#{r[0]}: #{r[4]}" }.join("; ")}"
  end
end

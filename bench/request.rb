# frozen_string_literal: true

# Benchmark 5's cause, timed in one process: what the throughput app's
# 10 evaluations (bench/throughput/config.ru: the same 1,000 flags, names
# and context) cost a request when the caches are warm, and when other
# work has evicted them, as a server worker's request does between two of
# them (Puma, the kernel's network path, Rack and Ruby run in between).
#
# Each request builds the app's context and makes the 10 calls of one
# subject, timed as a whole; subjects take turns request by request, so
# that drift and other load hit them alike, and each figure is the median
# over REQUESTS requests, less the median of the same loop making no call
# ("nothing"). Three ways to start a request:
#
# - warm: straight after the last request;
# - cold: after reading SWEEP_MIB of memory (default: 4x the CPU's
#   second-level cache), which leaves the calls' code and data to come
#   from the last-level cache or memory;
# - cold, code warm: the same read, then the same calls on 10 other flags
#   of the same shapes (untimed): the code, the context and the client's
#   shared state are cached again, the 10 flags' own data is not.
#
# Subjects, each 10 calls per request:
#
# - floor: Forkflag::Client#_noop(name, hash), an empty native method;
# - enabled? and variant, as the app calls them;
# - reference: the least an evaluation written in Ruby does, a method that
#   finds the flag in a Hash of the same 1,000 flags and reads the context
#   (its user id, its plan), with no counting, hashing or versions.
#
#   ruby bench/request.rb            (or: rake bench:request)
#   REQUESTS=8000 SWEEP_MIB=32 ruby bench/request.rb
require_relative "support"

REQUESTS = Bench.env_number("REQUESTS", 3000).to_i
# The second-level cache of CPU 0 (Linux's sysfs), 2 MiB when unknown.
L2_BYTES = begin
  size = File.read("/sys/devices/system/cpu/cpu0/cache/index2/size").strip
  Integer(size[/\A\d+/]) << { "K" => 10, "M" => 20 }.fetch(size[/[KM]/], 0)
rescue SystemCallError, ArgumentError, TypeError
  2 << 20
end
SWEEP_MIB = Bench.env_number("SWEEP_MIB", [(4 * L2_BYTES) >> 20, 1].max).to_i
FLAGS = 1000

# The reference: flags in a Hash, each with its enabled bit, its user ids,
# the plans its constraints accept and its rollout (from the same payload).
class MinimalEvaluator
  def initialize(features)
    @flags = features.to_h do |f|
      strategy = f[:strategies].first
      params = strategy[:parameters] || {}
      plans = (strategy[:constraints] || []).find { |c| c[:contextName] == "plan" }&.dig(:values) || []
      users = params[:userIds].to_s.split(",")
      [-f[:name], { enabled: f[:enabled], users: users.freeze, plans: plans.freeze,
                    rollout: Integer(params[:rollout] || "100") }.freeze]
    end.freeze
  end

  def enabled?(name, context)
    flag = @flags[name] or return false
    return false unless flag[:enabled]

    flag[:users].include?(context[:userId]) || flag[:plans].include?(context.dig(:properties, :plan)) ||
      flag[:rollout] >= 50
  end
end

features = Bench.mixed_features(FLAGS)
client = Bench.local_client(Bench.payload(features))
reference = MinimalEvaluator.new(features)
names = Bench.request_names
# Flags of the same shapes as the app's (mixed_features cycles through 5).
others = names.map { |n| -format("flag-%05d", (Integer(n[/\d+/], 10) + (FLAGS / 2)) % FLAGS) }.freeze

SUBJECTS = {
  "nothing" => ->(list, _ctx) { list.each { |_n| } }, # the loop alone
  "floor: _noop(name, hash) x10" => ->(list, ctx) { list.each { |n| client._noop(n, ctx) } },
  "enabled?(name, hash) x10" => ->(list, ctx) { list.each { |n| client.enabled?(n, ctx) } },
  "variant(name, hash) x10" => ->(list, ctx) { list.each { |n| client.variant(n, ctx) } },
  "reference: Ruby Hash lookup x10" => ->(list, ctx) { list.each { |n| reference.enabled?(n, ctx) } }
}.freeze
MODES = ["warm", "cold", "cold, code warm"].freeze

sweep = "x" * (SWEEP_MIB << 20)
clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC, :float_microsecond) }
# Every subject has run on both lists (lookups remembered, caches of call sites filled).
SUBJECTS.each_value do |calls|
  3.times do
    calls.call(names, {})
    calls.call(others, {})
  end
end

puts "bench/request.rb: #{REQUESTS} requests of 10 calls per subject and way; cold: after reading " \
     "#{SWEEP_MIB} MiB (second-level cache #{L2_BYTES >> 10} KiB); #{FLAGS} flags"
puts Bench.machine

medians = MODES.to_h do |mode|
  times = Hash.new { |h, k| h[k] = [] }
  subjects = SUBJECTS.to_a
  GC.start
  GC.disable # a collection lands in one request only; one between rounds instead
  (REQUESTS * subjects.size).times do |r|
    label, calls = subjects[r % subjects.size]
    sweep.sum unless mode == "warm"
    context = Bench.request_context("user-42")
    calls.call(others, context) if mode == "cold, code warm"
    started = clock.call
    calls.call(names, context)
    times[label] << (clock.call - started)
    next unless (r % 1000) == 999

    GC.enable
    GC.start
    GC.disable
  end
  GC.enable
  warn "#{mode}: done"
  [mode, times.transform_values { |t| Bench.median(t) }]
end

beyond = MODES.to_h do |mode|
  m = medians.fetch(mode)
  [mode, m.except("nothing").transform_values { |t| t - m.fetch("nothing") }]
end
floor = "floor: _noop(name, hash) x10"
ref = "reference: Ruby Hash lookup x10"
puts
puts "us per request, beyond the same loop making no call (median of #{REQUESTS})"
rows = beyond.fetch("warm").keys.map do |label|
  cold = beyond.fetch("cold").fetch(label)
  [label, *MODES.map { |mode| format("%.2f", beyond.fetch(mode).fetch(label)) },
   format("%.2fx", cold / beyond.fetch("cold").fetch(floor)), format("%.2fx", cold / beyond.fetch("cold").fetch(ref))]
end
Bench.table(["10 calls per request", *MODES, "cold x floor", "cold x reference"], rows)
puts
cold = beyond.fetch("cold")
puts format("cold, enabled? x10 costs %.2f us beyond nothing (%.2f us beyond the floor); the Ruby reference %.2f us; " \
            "%.2f us of enabled?'s is code and shared state (cold less 'cold, code warm')",
            cold.fetch("enabled?(name, hash) x10"), cold.fetch("enabled?(name, hash) x10") - cold.fetch(floor),
            cold.fetch(ref), cold.fetch("enabled?(name, hash) x10") -
                             beyond.fetch("cold, code warm").fetch("enabled?(name, hash) x10"))

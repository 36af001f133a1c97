# frozen_string_literal: true

# The official SDK's API (forkflag/unleash) against forkflag's own, on a
# default-strategy flag: what the layer adds to an evaluation (converting
# an Unleash::Context, the default and fallback handling, making an
# Unleash::Variant). Each subject is timed in rounds alternating with
# Forkflag::Client#enabled? with a Hash, the reference; the figures are
# medians of the ratios. For reference, without a goal.
#
#   ruby bench/unleash.rb        (BENCH_ROUNDS, BENCH_TIME)
require_relative "support"
require "forkflag/unleash"
require "benchmark/ips"

ROUNDS = Bench.env_number("BENCH_ROUNDS", 5).to_i
TIME = Bench.env_number("BENCH_TIME", 0.6)

Unleash.configuration.app_name = "bench"
Unleash.configuration.logger = Logger.new(nil)
json = Bench.payload([Bench.default_flag("plain")])
layer = Unleash::Client.new(disable_client: true, bootstrap_config: Unleash::Bootstrap::Configuration.new(data: json))
native = layer.forkflag
hash = { userId: "user-14", properties: { version: "2.3.0" } }
context = Unleash::Context.new(user_id: "user-14", properties: { version: "2.3.0" })

subjects = {
  "Forkflag::Client#enabled?(name, hash)" => -> { native.enabled?("plain", hash) },
  "Unleash::Client#is_enabled?(name, hash)" => -> { layer.is_enabled?("plain", hash) },
  "Unleash::Client#is_enabled?(name, Unleash::Context)" => -> { layer.is_enabled?("plain", context) },
  "Unleash::Client#is_enabled?(name, context, true)" => -> { layer.is_enabled?("plain", context, true) },
  "Unleash::Client#get_variant(name, Unleash::Context)" => -> { layer.get_variant("plain", context) },
  "Forkflag::Client#variant(name, hash)" => -> { native.variant("plain", hash) }
}
reference = subjects.keys.first
ns = Hash.new { |h, k| h[k] = [] }
ratios = Hash.new { |h, k| h[k] = [] }
puts "bench/unleash.rb: #{ROUNDS} rounds, #{TIME} s per subject per round (benchmark-ips #{Benchmark::IPS::VERSION})"
puts Bench.machine
ROUNDS.times do |round|
  report = Benchmark.ips(quiet: true) do |x|
    x.config(time: TIME, warmup: 0.2)
    subjects.keys.rotate(round).each { |label| x.report(label, &subjects[label]) }
  end
  per_call = report.entries.to_h { |e| [e.label, 1e9 / e.ips] }
  per_call.each do |label, value|
    ns[label] << value
    ratios[label] << (value / per_call[reference])
  end
  $stderr.print "."
end
warn ""
rows = subjects.keys.map do |label|
  [label, format("%.0f", Bench.median(ns[label])), format("%.2fx", Bench.median(ratios[label]))]
end
puts
Bench.table(["call (a default-strategy flag; times include the benchmark's block call)", "ns/call",
             "x forkflag"], rows)

# frozen_string_literal: true

# Benchmark 2: an evaluation from Ruby against the floor, an empty native
# method with the same arguments (Forkflag::Client#_noop), measured in the
# same run with benchmark-ips.
#
# For a default-strategy flag and for the constrained shape (SEMVER, an IN
# list of 1,000 values, STR_ENDS_WITH), it times `enabled?` and `variant`
# with a Hash context and with a prebuilt Forkflag::Context. Each round runs
# every subject and the floor once, in an order rotated every round; the
# figures are medians over the rounds of each subject's time per call and of
# its ratio to the floor of the same round. Every timed block is the same
# `while` loop around one call, so the loop's own cost is in the floor too.
#
# Goals: within 2x of the floor for the default-strategy flag; under 1 us per
# call for the constrained shape on this machine.
#
#   ruby bench/evaluate.rb      (or: rake bench:ruby)
#   BENCH_ROUNDS=7 BENCH_TIME=1 ruby bench/evaluate.rb
require_relative "support"
require "benchmark/ips"

ROUNDS = Bench.env_number("BENCH_ROUNDS", 5).to_i
TIME = Bench.env_number("BENCH_TIME", 0.6)

client = Bench.local_client(Bench.payload([Bench.default_flag("plain"), Bench.constrained_flag("constrained")]))
fields = { user_id: "user-14", properties: { version: "2.3.0", email: "u14@example.com" } }
hash = { userId: "user-14", properties: { version: "2.3.0", email: "u14@example.com" } }
prebuilt = Forkflag::Context.new(**fields)
abort "the constrained flag must be on for the benchmark context" unless client.enabled?("constrained", hash) &&
                                                                         client.enabled?("constrained", prebuilt)

# label => [flag, operation, context kind, block]; the floor first.
# Each block runs `times` calls in the same loop.
subjects = {
  "floor" => [nil, "_noop", "Hash", lambda { |times|
    i = 0
    while i < times
      client._noop("plain", hash)
      i += 1
    end
  }]
}
{ "plain" => "default strategy", "constrained" => "3 constraints" }.each do |flag, shape|
  { "Hash" => hash, "Context" => prebuilt }.each do |kind, ctx|
    subjects["#{shape} enabled? #{kind}"] = [shape, "enabled?", kind, lambda { |times|
      i = 0
      while i < times
        client.enabled?(flag, ctx)
        i += 1
      end
    }]
    subjects["#{shape} variant #{kind}"] = [shape, "variant", kind, lambda { |times|
      i = 0
      while i < times
        client.variant(flag, ctx)
        i += 1
      end
    }]
  end
end

# The name objects above are frozen literals, which the client remembers
# (see ext/forkflag/src/names.rs). A String that is not frozen is looked up
# by its bytes at every call: shown for reference, without a goal.
unfrozen = +"plain"
{ "Hash" => hash, "Context" => prebuilt }.each do |kind, ctx|
  subjects["unfrozen name enabled? #{kind}"] = ["unfrozen name", "enabled?", kind, lambda { |times|
    i = 0
    while i < times
      client.enabled?(unfrozen, ctx)
      i += 1
    end
  }]
end

# A flag decided by a custom strategy that answers true at once: what
# calling Ruby code costs (a client of its own; the one above has no
# custom strategies, as a client without them pays nothing). For
# reference, without a goal.
# A default-strategy flag on that client takes the general path (a client
# with custom strategies answers all its flags there).
custom = Bench.custom_client(Bench.payload([Bench.default_flag("plain"), Bench.custom_flag("custom")]))
abort "the custom strategy must answer" unless custom.enabled?("custom", hash)
{ "Hash" => hash, "Context" => prebuilt }.each do |kind, ctx|
  subjects["custom strategy enabled? #{kind}"] = ["custom strategy", "enabled?", kind, lambda { |times|
    i = 0
    while i < times
      custom.enabled?("custom", ctx)
      i += 1
    end
  }]
end
subjects["default, custom client enabled? Hash"] = ["default strategy, client with a custom strategy", "enabled?",
                                                    "Hash", lambda { |times|
                                                      i = 0
                                                      while i < times
                                                        custom.enabled?("plain", hash)
                                                        i += 1
                                                      end
                                                    }]

labels = subjects.keys
ns = Hash.new { |h, k| h[k] = [] }
ratios = Hash.new { |h, k| h[k] = [] }
puts "bench/evaluate.rb: #{ROUNDS} rounds, #{TIME} s per subject per round (benchmark-ips #{Benchmark::IPS::VERSION})"
puts Bench.machine
ROUNDS.times do |round|
  order = labels.rotate(round)
  report = Benchmark.ips(quiet: true) do |x|
    x.config(time: TIME, warmup: 0.2)
    order.each { |label| x.report(label, &subjects[label][3]) }
  end
  per_call = report.entries.to_h { |e| [e.label, 1e9 / e.ips] }
  per_call.each do |label, value|
    ns[label] << value
    ratios[label] << (value / per_call["floor"])
  end
  $stderr.print "."
end
warn ""

rows = labels.drop(1).map do |label|
  shape, op, kind, = subjects[label]
  time = Bench.median(ns[label])
  ratio = Bench.median(ratios[label])
  goal, met = case shape
              when "default strategy" then ["<= 2x floor", ratio <= 2.0]
              when "3 constraints" then ["< 1000 ns", time < 1000]
              else ["(reference)", nil]
              end
  [shape, op, kind, format("%.0f", time), format("%.2fx", ratio),
   format("%<min>.2f-%<max>.2f", min: ratios[label].min, max: ratios[label].max), goal,
   met.nil? ? "" : Bench.verdict(met)]
end
puts
puts "floor (client._noop(name, hash)): #{format("%.1f", Bench.median(ns["floor"]))} ns per call"
Bench.table(["shape", "call", "context", "ns/call", "x floor", "x floor range", "goal", ""], rows)
missed = rows.count { |r| r.last != "met" && r.last != "" }
goals = rows.count { |r| r.last != "" }
puts
puts "goal (default strategy within 2x of the floor; constrained under 1 us): " \
     "#{missed.zero? ? "met" : "MISSED on #{missed} of #{goals}"}"

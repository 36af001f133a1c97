# frozen_string_literal: true

# Benchmark 2, counted in instructions: the same calls as bench/evaluate.rb,
# each run N times in a `while` loop under valgrind's callgrind, which
# counts the instructions the process executes. A call's figure is (loop
# with the call - the same loop empty) / N; the floor is the loop around
# Forkflag::Client#_noop. Instruction counts do not depend on the machine's
# load, so they show a change that timing on a shared machine cannot
# resolve; they are not a time (a cache miss costs one instruction here).
#
#   ruby bench/instructions.rb            (or: rake bench:instructions)
#   CALLS=500000 ruby bench/instructions.rb
#
# Needs valgrind (Debian: apt-get install valgrind).
require_relative "support"

CALLS = Bench.env_number("CALLS", 200_000).to_i

# label => the call the loop makes ("empty": none). Each loop is compiled
# from this text, so the loops differ only by the call.
SUBJECTS = {
  "empty" => "",
  "floor: _noop(name, hash)" => "client._noop(name, hash)",
  "enabled?(name, hash)" => "client.enabled?(name, hash)",
  "enabled?(name, context)" => "client.enabled?(name, context)",
  "variant(name, hash)" => "client.variant(name, hash)",
  "variant(name, context)" => "client.variant(name, context)",
  "enabled?(unfrozen name, hash)" => "client.enabled?(unfrozen, hash)",
  "enabled?(constrained, hash)" => "client.enabled?(constrained, hash)",
  "enabled?(custom strategy, hash)" => "custom.enabled?(custom_name, hash)",
  "enabled?(name, hash), client with a custom strategy" => "custom.enabled?(name, hash)"
}.freeze

# In the process valgrind runs: one loop, then exit.
if (label = ARGV[0])
  client = Bench.local_client(Bench.payload([Bench.default_flag("plain"), Bench.constrained_flag("constrained")]))
  name = "plain"
  unfrozen = +"plain"
  constrained = "constrained"
  # A client of its own: the client above has no custom strategies.
  custom = Bench.custom_client(Bench.payload([Bench.default_flag("plain"), Bench.custom_flag("custom")]))
  custom_name = "custom"
  hash = { userId: "user-14", properties: { version: "2.3.0", email: "u14@example.com" } }
  context = Forkflag::Context.new(user_id: "user-14", properties: { version: "2.3.0", email: "u14@example.com" })
  # rubocop:disable Security/Eval -- the loop text is one of SUBJECTS above
  eval(<<~LOOP, binding, __FILE__, __LINE__ + 1)
    i = 0                         # i = 0
    while i < CALLS               # while i < CALLS
      #{SUBJECTS.fetch(label)}    #   client.enabled?(name, hash)
      i += 1                      #   i += 1
    end                           # end
  LOOP
  # rubocop:enable Security/Eval
  exit!(0)
end

valgrind = Bench.valgrind("bench/instructions.rb")

puts "bench/instructions.rb: #{CALLS} calls a loop, counted by callgrind"
puts Bench.machine
totals = SUBJECTS.keys.to_h do |subject|
  out = IO.popen([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
                  RbConfig.ruby, __FILE__, subject], err: %i[child out], &:read)
  collected = out[/Collected : (\d+)/, 1] or abort "no count from callgrind for #{subject}:\n#{out}"
  $stderr.print "."
  [subject, Integer(collected)]
end
warn ""

per_call = totals.except("empty").transform_values { |t| (t - totals["empty"]).fdiv(CALLS) }
floor = per_call.fetch("floor: _noop(name, hash)")
rows = per_call.map do |subject, n|
  [subject, format("%.0f", n), format("%.2fx", n / floor)]
end
puts
Bench.table(["call (default-strategy flag unless named)", "instructions", "x floor"], rows)

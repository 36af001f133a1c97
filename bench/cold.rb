# frozen_string_literal: true

# Benchmark 5's cause, counted: what a request's 10 evaluations bring into
# the caches when they start cold, as they do in a server worker between
# requests (bench/throughput.rb's app: the same names, context and 1,000
# flags). Each request first reads a buffer larger than the modelled caches,
# then makes its 10 calls; cachegrind counts what misses:
#
# - instruction lines and data lines (64 B) in 32 KiB first-level caches;
# - 4 KiB pages, in a last level modelled as 64 pages (a 64-entry TLB): each
#   miss there is a page the request touched after other work evicted it.
#
# A subject's figure per request is (run with REQUESTS requests - the same
# run without calls) / REQUESTS, so the set-up, the client's build and the
# sweeps cancel; the median of RUNS such pairs, because a process's layout
# (its hash seeds, where its heap objects land) differs from run to run and
# moves the data and page figures by up to a half. Instructions and code
# lines move by about a tenth. The floor is the same 10 calls to
# Forkflag::Client#_noop, an empty native method with the same arguments.
# These are counts, not
# times: they do not depend on the machine's load, and they show where a
# cold request's time goes (on a virtual machine a page missed from the TLB
# costs a walk of two page tables).
#
#   ruby bench/cold.rb            (or: rake bench:cold)
#   REQUESTS=400 RUNS=5 ruby bench/cold.rb
#
# Needs valgrind (Debian: apt-get install valgrind).
require_relative "support"

REQUESTS = Bench.env_number("REQUESTS", 200).to_i
RUNS = Bench.env_number("RUNS", 3).to_i
SWEEP_BYTES = 1 << 20 # 4x the modelled last level, 32x the first
# Address-space randomisation moves the heap and the libraries between runs,
# and with them which lines share a set and which objects share a page.
NO_ASLR = system("setarch", "-R", "true", out: File::NULL, err: File::NULL) ? %w[setarch -R] : [].freeze
MODEL = %w[--I1=32768,8,64 --D1=32768,8,64 --LL=262144,64,4096].freeze

# label => the 10 calls of a request ("sweep only": none).
SUBJECTS = {
  "sweep only" => nil,
  "floor: _noop(name, hash) x10" => :_noop,
  "enabled?(name, hash) x10" => :enabled?,
  "variant(name, hash) x10" => :variant
}.freeze

# In the process valgrind runs: REQUESTS requests, then exit.
if (label = ARGV[0])
  client = Bench.local_client(Bench.payload(Bench.mixed_features(1000)))
  names = Bench.request_names
  sweep = "x" * SWEEP_BYTES
  call = SUBJECTS.fetch(label)
  names.each { |name| client.public_send(call, name, {}) } if call # a first call of each, as a warm server has made
  GC.start
  GC.disable # a collection inside one run and not another would be counted as the calls'
  i = 0
  while i < REQUESTS
    sweep.sum # reads every line of the buffer
    context = Bench.request_context("user-42")
    names.each { |name| client.public_send(call, name, context) } if call
    i += 1
  end
  exit!(0)
end

valgrind = Bench.valgrind("bench/cold.rb")
puts "bench/cold.rb: #{REQUESTS} requests of 10 calls, each after a #{SWEEP_BYTES >> 10} KiB sweep, " \
     "counted by cachegrind (#{MODEL.join(" ")}); median of #{RUNS} runs"
puts Bench.machine

# Instructions, instruction lines, data lines (read + write), pages: totals of one run.
def counts(valgrind, subject)
  out = IO.popen([*NO_ASLR, valgrind, "--tool=cachegrind", "--cache-sim=yes", "--cachegrind-out-file=/dev/null", *MODEL,
                  RbConfig.ruby, __FILE__, subject], err: %i[child out], &:read)
  field = lambda do |name|
    Integer((out[/#{Regexp.escape(name)}:\s+([\d,]+)/, 1] or abort "no #{name} from cachegrind:\n#{out}").delete(","))
  end
  [field.call("I   refs"), field.call("I1  misses"), field.call("D1  misses"), field.call("LL misses")]
end

# Each run's subjects beside one made without calls, RUNS times in turn;
# per request, the median over the runs.
runs = Array.new(RUNS) do
  totals = SUBJECTS.keys.to_h do |subject|
    c = counts(valgrind, subject)
    $stderr.print "."
    [subject, c]
  end
  base = totals.fetch("sweep only")
  totals.except("sweep only").transform_values { |c| c.zip(base).map { |n, b| (n - b).fdiv(REQUESTS) } }
end
warn ""
per_request = runs.first.keys.to_h do |subject|
  [subject, Array.new(4) { |k| Bench.median(runs.map { |r| r[subject][k] }) }]
end
floor = per_request.fetch("floor: _noop(name, hash) x10")
rows = per_request.map do |subject, c|
  [subject, *c.map { |n| format("%.0f", n) }, *c.zip(floor).map { |n, f| format("%.2fx", n / f) }]
end
puts
Bench.table(["per request", "instructions", "code lines", "data lines", "pages",
             "x floor: instr", "code", "data", "pages"], rows)
puts
per_request.except("floor: _noop(name, hash) x10").each do |subject, c|
  beyond = c.zip(floor).map { |n, f| n - f }
  puts "#{subject} beyond the floor, per evaluation: " \
       "#{format("%.0f", beyond[0] / 10)} instructions, #{format("%.1f", beyond[1] / 10)} code lines, " \
       "#{format("%.1f", beyond[2] / 10)} data lines, #{format("%.1f", beyond[3] / 10)} pages"
end

# frozen_string_literal: true

require "fiddle"

# Every public method of the Ruby API called with hostile values
# (spec/support/hostile/values.rb: nil, huge numbers, NaN, 10 MB and
# invalid-UTF-8 Strings, BasicObject, objects whose conversions raise,
# recursive and 100k-key Hashes, far-out Times, ...). Only TypeError,
# ArgumentError, RangeError, EncodingError, a Forkflag::Error or the value's
# own exception may escape, and the process never crashes or hangs: each
# call site runs in forked children, so a crash fails the call it happened
# in, with its report. About half of the calls run under GC.stress.
#
# FORKFLAG_HOSTILE_SHORT=1 runs every 5th value without GC.stress (the
# valgrind run, rake spec:valgrind); FORKFLAG_HOSTILE_SITES=ci only the call
# sites that reach the native code most (rake spec:valgrind:ci).
RSpec.describe "hostile input to the public Ruby API" do
  short = ENV["FORKFLAG_HOSTILE_SHORT"] == "1"
  step_options = short ? { every: 5, stress: false } : {}
  ci_sites = ["Client.new(bootstrap:)", "enabled?(name, context)", "enabled? with String keys",
              "enabled? with currentTime (DATE)", "enabled? with a property", "variant with currentTime",
              "explain with fields",
              "update(json)", "Context.new(properties:)", "Context.new(current_time:)", "Variant.new(payload:)"]
  sites = Hostile::CALLS.each_with_index.to_a
  sites = sites.select { |(label, _), _| ci_sites.include?(label) } if ENV["FORKFLAG_HOSTILE_SITES"] == "ci"
  # Call sites run this many at a time (FORKFLAG_HOSTILE_JOBS).
  jobs = Integer(ENV.fetch("FORKFLAG_HOSTILE_JOBS", "2"))
  date_check = ["DATE_AFTER 2024", ->(t, fx) { Hostile.check_date(t, fx) }]

  # Totals over the examples that ran, for the summary.
  totals = { calls: 0, sites: 0, returned: 0, raised: 0, failures: 0, stress: Hash.new(0), kinds: Hash.new(0),
             values: {}, seconds: {} }

  record = lambda do |label, seconds, steps, report|
    totals[:seconds][label] = seconds
    totals[:sites] += 1
    totals[:calls] += steps.size
    totals[:returned] += report.returned
    totals[:raised] += report.raised
    totals[:failures] += report.failures.size
    steps.each do |step|
      value = Hostile.values[step.value_index]
      totals[:stress][step.stress] += 1
      totals[:kinds][value.kind] += 1
      totals[:values][value.label] = value.kind
    end
  end

  # label => [steps, report, seconds], for the examples that run (all at
  # once here, `jobs` at a time; each example then reads its own).
  results = {}
  before(:all) do
    Hostile.values # built once, before the children fork
    wanted = self.class.descendant_filtered_examples.map { |e| e.metadata[:hostile_site] }
    work = sites.filter_map do |(label, call), site|
      [label, call, Hostile.steps(site, **step_options)] if wanted.include?(label)
    end
    if wanted.include?(date_check.first)
      times = Hostile.values.each_index.select { |i| Hostile.values[i].kind == "Time far out of range" }
      work << [*date_check, times.map { |i| Hostile::Step.new(i, :off) }]
    end
    steps = work.to_h { |label, _, s| [label, s] }
    Hostile.run_sites(work, jobs: jobs).each do |label, (report, seconds)|
      results[label] = [steps[label], report, seconds]
      record.call(label, seconds, steps[label], report)
    end
  end

  after(:all) do
    next if totals[:calls].zero?

    stressed = totals[:stress][:minor] + totals[:stress][:full]
    kinds = totals[:values].values.tally
    line = "hostile input: #{totals[:calls]} calls at #{totals[:sites]} call sites over #{totals[:values].size} " \
           "values of #{kinds.size} kinds; #{stressed} under GC.stress (#{totals[:stress][:minor]} minor, " \
           "#{totals[:stress][:full]} full); #{totals[:returned]} returned, #{totals[:raised]} raised an allowed " \
           "exception, #{totals[:failures]} failed"
    table = totals[:kinds].sort.map do |kind, calls|
      "#{kind.ljust(50)} #{kinds[kind].to_s.rjust(3)} values #{calls.to_s.rjust(5)} calls"
    end
    table << "slowest call sites:"
    table.concat(totals[:seconds].max_by(8, &:last).map { |label, s| "#{s.round(1).to_s.rjust(6)} s  #{label}" })
    FileUtils.mkdir_p(File.expand_path("../../tmp", __dir__))
    File.write(File.expand_path("../../tmp/hostile_input_summary.txt", __dir__), ([line] + table).join("\n") << "\n")
    puts "\n#{line} (per kind: tmp/hostile_input_summary.txt)"
  end

  sites.each do |(label, _call), _site|
    it "answers #{label} with a value or an allowed exception", :hostile, hostile_site: label do
      report = results.fetch(label)[1]
      expect(report.failures).to be_empty,
                                 -> { "#{report.failures.size} call(s) failed:\n#{report.failures.join("\n")}" }
    end
  end

  # Tagged: a deliberate invalid read and a killed child, which valgrind
  # would rightly report (rake spec:valgrind leaves it out).
  it "reports a call that crashes or hangs as that call's failure, and runs the calls after it", :deliberate_crash do
    steps = (0..3).map { |i| Hostile::Step.new(i, :off) }
    targets = [Hostile.values[1].object, Hostile.values[2].object] # true, false
    call = lambda do |value, _fixture|
      Fiddle::Pointer.new(8)[0, 8] if value.equal?(targets[0]) # SIGSEGV in this thread
      sleep if value.equal?(targets[1])
    end
    report = Hostile::Runner.new("crash", call, steps, deadline: 3).run
    expect(report.failures.size).to eq(2)
    # Ruby's [BUG] handler turns the SIGSEGV into an abort.
    expect(report.failures[0]).to match(/crash with true \(GC.stress off\): the process crashed with signal ABRT/)
    expect(report.failures[1]).to match(/crash with false \(GC.stress off\): the process hung \(killed after 3s\)/)
    expect(report.returned).to eq(2)
  end

  it "never answers a DATE constraint the opposite way for a Time far out of range", :hostile,
     hostile_site: date_check.first do
    report = results.fetch(date_check.first)[1]
    expect(report.failures).to be_empty, -> { report.failures.join("\n") }
  end
end

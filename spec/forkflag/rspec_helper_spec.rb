# frozen_string_literal: true

require "json"
require "rbconfig"
require "tmpdir"

# forkflag/rspec, proven in real rspec processes running the fixture suite
# spec/fixtures/rspec_helper/overrides.rb (its examples record what they saw).
RSpec.describe "forkflag/rspec" do
  let(:fixtures) { File.expand_path("../fixtures/rspec_helper", __dir__) }
  let(:lib) { File.expand_path("../../lib", __dir__) }
  let(:tmp) { Dir.mktmpdir("forkflag-rspec-helper") }
  let(:record) { File.join(tmp, "record.jsonl") }

  after { FileUtils.rm_rf(tmp) }

  # Runs ruby with args in tmp (away from this project's .rspec), bounded.
  def run_ruby(*args, timeout: 90)
    log = File.join(tmp, "output.log")
    env = { "FORKFLAG_TEST_FLAGS" => File.join(fixtures, "flags.json"), "RECORD" => record }
    pid = Process.spawn(env, RbConfig.ruby, "-I", lib, *args, chdir: tmp, in: File::NULL, out: log, err: %i[child out])
    status, late = Forking.reap(pid, deadline: Forking.now + timeout)
    output = File.read(log)
    expect(late).to be(false), "ruby #{args.join(" ")} did not finish within #{timeout}s:\n#{output}"
    [status, output]
  end

  def records(path = record)
    File.readlines(path).map { |line| JSON.parse(line, symbolize_names: true) }.group_by { |r| r[:example] }
  end

  def state(checkout:, legacy: true, banner: nil, payload: nil)
    variant = { name: "disabled", enabled: false, feature_enabled: false, payload: nil }
    variant = { name: banner, enabled: true, feature_enabled: true, payload: payload } if banner
    { checkout: checkout, legacy: legacy, banner: variant }
  end

  def clean = state(checkout: false)

  it "applies overrides per example, restores them after each (also a failed one), and reaches forked children" do
    results = File.join(tmp, "results.json")
    status, output = run_ruby("-S", "rspec", "--order", "defined", "--format", "json", "--out", results,
                              File.join(fixtures, "overrides.rb"))
    summary = JSON.parse(File.read(results), symbolize_names: true)
    failed = summary[:examples].reject { |e| e[:status] == "passed" }.map { |e| e[:description] }
    expect([status.exitstatus, summary[:summary][:example_count], failed])
      .to eq([1, 8, ["5 fails with overrides left in force (the failure is expected)"]]), "rspec output:\n#{output}"

    seen = records
    slice = ->(r) { r.slice(:checkout, :legacy, :banner) }
    expect(slice.call(seen[1].first)).to eq(state(checkout: true, banner: "blue"))
    expect(slice.call(seen[2].first)).to eq(clean)
    expect(seen[3].first[:inside]).to eq(state(checkout: true, legacy: false))
    expect(seen[3].first[:after]).to eq(clean)
    red = state(checkout: false, banner: "red", payload: { type: "json", value: '{"color":"red"}' })
    expect(seen[4].first.slice(:outer, :inner, :back)).to eq(
      outer: red, inner: state(checkout: false, banner: "green", payload: { type: "string", value: "plain" }), back: red
    )
    expect(slice.call(seen[5].first)).to eq(state(checkout: true))
    expect(slice.call(seen[6].first)).to eq(clean)
    expect(slice.call(seen[8].first)).to eq(clean)

    forked = seen[7].to_h { |r| [r[:role], r] }
    expect(forked.keys).to contain_exactly("fork", "parallel-1", "parallel-2", "parent")
    expect(forked["parent"][:status]).to eq(0)
    expected = state(checkout: true, banner: "blue", payload: { type: "number", value: "7" })
    forked.each_value { |r| expect(slice.call(r)).to eq(expected), r.inspect }
    # Parallel may give both items to one worker; none of them is the example's process.
    workers = [forked["fork"][:pid], forked["parallel-1"][:worker], forked["parallel-2"][:worker]]
    expect(workers).not_to include(forked["parent"][:pid])
  end

  it "keeps each forked worker's overrides to itself when two run the suite at once" do
    status, output = run_ruby(File.join(fixtures, "forked_workers.rb"))
    expect(status.exitstatus).to eq(0), "rspec output:\n#{output}"
    expect(output).to include("worker statuses: [1, 1]")

    strip = ->(by_example) { by_example.transform_values { |rs| rs.map { |r| r.except(:pid, :worker) } } }
    first = records("#{record}-1")
    second = records("#{record}-2")
    expect(first.keys.sort).to eq((1..8).to_a)
    expect(strip.call(first)).to eq(strip.call(second))
    expect(first[2].first.slice(:checkout, :legacy, :banner)).to eq(clean)
    expect(first[7].map { |r| r[:checkout] }).to all(be(true))
  end
end

# frozen_string_literal: true

require "json"
require "rbconfig"
require "tmpdir"

# Loading a payload allocates several times its JSON in short-lived values;
# forkflag gives those pages back to the kernel after a large load, so that
# neither the process nor each fork of it carries them. Measured in a fresh
# Ruby process, whose heap holds nothing of other examples.
RSpec.describe "the heap a payload load frees" do
  include FlagPayloads

  # A large payload: 10,000 flags, each with a rollout and an IN list, and
  # "<prefix>-marker", on for everyone.
  def large_payload(prefix)
    features = Array.new(10_000) do |i|
      ids = Array.new(20) { |j| "#{prefix}-user-#{(i * 20) + j}" }
      flag("#{prefix}-#{i.to_s.rjust(5, "0")}",
           strategies: [rollout(i % 101, group_id: "g#{i}",
                                         constraints: [{ contextName: "userId", operator: "IN", values: ids }])])
    end
    payload(flag("#{prefix}-marker"), *features)
  end

  # Creates a file client on `path` in a new Ruby process, then swaps in
  # `next_path` and waits for the background thread to load it; prints the
  # growth of the process's resident anonymous memory (KiB) at each step.
  let(:script) do
    <<~RUBY
      require "forkflag"
      require "json"
      path, next_path, marker = ARGV
      def anon = File.read("/proc/self/status")[/RssAnon:\\s+(\\d+)/, 1].to_i
      def settle = 3.times { GC.start }
      settle
      before = anon
      client = Forkflag::Client.new(file: path, refresh_interval: 0.05, backup_path: false, disable_metrics: true)
      settle
      created = anon
      File.rename(next_path, path)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 30
      late = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline }
      sleep 0.02 until client.enabled?(marker) || late.call
      # The new flags are visible once published; the refresh that loaded
      # them is counted after the background thread has also given the
      # freed heap back, which is what is measured: the next count after
      # the flags appeared is that one or a later one.
      refreshes = client.stats[:refreshes]
      sleep 0.02 until client.stats[:refreshes] > refreshes || late.call
      settle
      puts JSON.generate(created: created - before, refreshed: anon - before, seen: client.enabled?(marker))
      client.close
    RUBY
  end

  it "keeps about the compiled snapshot resident after a large load, not the parser's garbage" do
    Dir.mktmpdir do |dir|
      path = File.join(dir, "flags.json")
      next_path = File.join(dir, "next.json")
      File.write(path, large_payload("a"))
      File.write(next_path, large_payload("b"))
      json_kib = File.size(path) / 1024
      out = IO.popen([RbConfig.ruby, "-I", File.expand_path("../../lib", __dir__), "-e", script,
                      path, next_path, "b-marker"], &:read)
      growth = JSON.parse(out, symbolize_names: true)
      expect(growth[:seen]).to be(true)
      # Live after the first load: one compiled snapshot (a little more than
      # the JSON). After the refresh: the new snapshot and the replaced one,
      # kept until its counters are collected. Without giving the freed
      # pages back, the growth was 7x the JSON after the first load and 17x
      # after the refresh.
      expect(growth[:created]).to be < 2 * json_kib,
                                  "resident growth #{growth[:created]} KiB for #{json_kib} KiB of JSON"
      expect(growth[:refreshed]).to be < 4 * json_kib,
                                    "resident growth #{growth[:refreshed]} KiB for #{json_kib} KiB of JSON"
    end
  end
end

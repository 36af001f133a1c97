# frozen_string_literal: true

require "json"
require "open3"
require "rbconfig"
require "tmpdir"

# A forked child's first evaluation starts the child's background thread.
# Everything that start touches for the first time in the child costs a page
# fault (a copy-on-write of a page the parent wrote, or the mapping of a
# library page), so the client prepares in the parent what a child would
# otherwise do for the first time: here, binding the dynamic loader's
# symbols that a thread start in a child needs.
RSpec.describe "what a forked child's first evaluation costs" do
  include FlagPayloads

  # In a new Ruby process run with the dynamic loader's binding log on:
  # creates a client, evaluates once (its thread starts), then forks two
  # children that exit the same way, one after its first evaluation and one
  # without evaluating. Prints its pid and the two children's.
  let(:script) do
    <<~RUBY
      require "forkflag"
      require "json"
      client = Forkflag::Client.new(file: ARGV[0], backup_path: false, disable_metrics: true)
      context = { userId: "user-1" }
      client.enabled?("on", context)
      abort "not ready" unless client.wait_until_ready(10)
      evaluated = fork do
        exit!(client.enabled?("on", context) ? 0 : 1)
      end
      idle = fork { exit!(0) }
      statuses = [evaluated, idle].map { |pid| Process.wait2(pid).last.exitstatus }
      puts JSON.generate(parent: Process.pid, evaluated: evaluated, idle: idle, statuses: statuses,
                         threads: client.stats[:thread_alive])
      client.close
    RUBY
  end

  # The symbols the dynamic loader bound lazily in process `pid`, from the
  # LD_DEBUG=bindings log lines that process wrote.
  def bound_symbols(log, pid)
    log.each_line.filter_map do |line|
      line[/\A\s*#{pid}:\s+binding file .* normal symbol `([^']+)'/, 1]
    end
  end

  it "binds no symbol in the child that the parent did not bind already" do
    Dir.mktmpdir do |dir|
      path = File.join(dir, "flags.json")
      File.write(path, payload(flag("on")))
      env = { "LD_DEBUG" => "bindings", "LD_DEBUG_OUTPUT" => File.join(dir, "ld") }
      out, status = Open3.capture2(env, RbConfig.ruby, "-I", File.expand_path("../../lib", __dir__), "-e", script,
                                   path)
      expect(status).to be_success
      result = JSON.parse(out, symbolize_names: true)
      expect(result[:statuses]).to eq([0, 0])
      # The parent's thread ran at the fork: the child's first evaluation
      # started its own, on the stack of the parent's.
      expect(result[:threads]).to be(true)
      log = Dir.glob(File.join(dir, "ld.*")).map { |file| File.read(file) }.join
      idle = bound_symbols(log, result[:idle])
      evaluated = bound_symbols(log, result[:evaluated])
      # The log works: it holds what the parent bound.
      expect(bound_symbols(log, result[:parent])).to include("pthread_create")
      # Without the client's preparation, the child's thread start bound
      # _dl_allocate_tls_init, walking the symbol tables of every library
      # loaded (about ten page faults in a fresh child).
      expect(evaluated - idle).to eq([]),
                                  "bound in the child's first evaluation: #{(evaluated - idle).inspect}"
    end
  end
end

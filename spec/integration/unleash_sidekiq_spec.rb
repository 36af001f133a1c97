# frozen_string_literal: true

require "json"
require "open3"
require "securerandom"
require "tmpdir"

# The official README's Sidekiq recipe (a client made in on(:startup),
# shut down in on(:shutdown)) in a real Sidekiq 6.4 process with a private
# Redis, on forkflag/unleash, against the real Unleash server: the jobs'
# answers, and the evaluations the shutdown hook sent.
RSpec.describe "Sidekiq running the official SDK's recipe on forkflag/unleash", :integration do
  let(:server) { UnleashServer.instance }
  let(:app_name) { "forkflag-sidekiq-#{SecureRandom.hex(4)}" }
  let(:dir) { Dir.mktmpdir("forkflag-sidekiq-") }
  let(:redis_port) { Loopback.free_port }
  let(:out) { File.join(dir, "jobs.jsonl") }
  let(:pids) { [] }

  after do
    pids.each do |pid|
      Forking.reap(pid, deadline: Forking.now)
    rescue Errno::ECHILD
      nil # reaped by the example
    end
    FileUtils.rm_rf(dir)
  end

  # Outside the suite's bundle (Sidekiq is not in its Gemfile), as the app runs.
  def spawn(env, *argv, log:)
    run = lambda do
      Process.spawn(env, *argv, chdir: File.expand_path("../..", __dir__), in: File::NULL,
                                out: File.join(dir, log), err: %i[child out])
    end
    pid = defined?(Bundler) ? Bundler.with_unbundled_env(&run) : run.call
    pids << pid
    pid
  end

  def env
    { "REDIS_URL" => "redis://127.0.0.1:#{redis_port}/0", "UNLEASH_URL" => server.url,
      "UNLEASH_TOKEN" => server.client_token, "UNLEASH_APP_NAME" => app_name,
      "RUBYLIB" => [File.expand_path("../../lib", __dir__), ENV.fetch("RUBYLIB", nil)].compact.join(":") }
  end

  def enqueue(klass, *args)
    code = "require 'sidekiq'; Sidekiq::Client.push('class' => ARGV[0], 'args' => JSON.parse(ARGV[1]))"
    run = -> { Open3.capture2e(env, RbConfig.ruby, "-rjson", "-e", code, klass, JSON.generate(args)) }
    output, status = defined?(Bundler) ? Bundler.with_unbundled_env(&run) : run.call
    expect(status.success?).to be(true), output
  end

  def lines
    File.exist?(out) ? File.readlines(out).map { |l| JSON.parse(l, symbolize_names: true) } : []
  end

  def log(name)
    path = File.join(dir, name)
    File.exist?(path) ? File.read(path)[-4000..] || File.read(path) : ""
  end

  it "answers the jobs from the client made at startup, and the shutdown hook reports their evaluations" do
    feature = "sidekiq-#{SecureRandom.hex(4)}"
    server.create_flag(feature)
    server.add_strategy(feature, constraints: [{ contextName: "userId", operator: "IN", values: %w[1 3] }])
    server.flip(feature, on: true)
    spawn({}, "redis-server", "--port", redis_port.to_s, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
          log: "redis.log")
    sidekiq = spawn(env, "sidekiq", "-r", "./spec/fixtures/unleash_sidekiq/app.rb", "-c", "2", log: "sidekiq.log")

    UnleashServer.wait_for(timeout: 30, interval: 0.5, message: "the client ready in Sidekiq") do
      enqueue("ReadyJob", out)
      UnleashServer.wait_for(timeout: 10, message: "a ReadyJob answered (#{log("sidekiq.log")})") do
        lines.any? { |l| l.key?(:ready) }
      end
      lines.any? { |l| l[:ready] }
    end
    %w[1 2 3].each { |user| enqueue("FlagJob", feature, user, out) }
    UnleashServer.wait_for(timeout: 20, message: "three flag jobs done") { lines.count { |l| l.key?(:user) } == 3 }
    expect(lines.select { |l| l.key?(:user) }.to_h { |l| [l[:user], l[:enabled]] })
      .to eq("1" => true, "2" => false, "3" => true)

    Process.kill("TERM", sidekiq)
    status, late = Forking.reap(sidekiq, deadline: Forking.now + 30)
    expect([late, status&.success?]).to eq([false, true]), log("sidekiq.log")
    expect(server.settled_totals(feature, { yes: 2, no: 1 }, app_name: app_name)).to include(yes: 2, no: 1)
  end
end

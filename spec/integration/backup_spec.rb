# frozen_string_literal: true

require "logger"
require "securerandom"
require "stringio"
require "tmpdir"

# The backup with a real Unleash server: where the default one is written,
# with which modes, that another environment's token never shares it (a
# private server, stopped half way), that forked workers writing it at once
# leave one whole file, and that a directory others can write is refused
# once, not at every refresh.
RSpec.describe "Forkflag default backup against a real Unleash server", :integration do
  let(:log) { StringIO.new }
  let(:logger) { Logger.new(log, level: Logger::DEBUG) }
  let(:clients) { [] }
  let(:app_name) { "forkflag-backup-#{SecureRandom.hex(4)}" }

  after { clients.each { |c| c.close(timeout: 5) } }

  def client(server, token)
    c = Forkflag::Client.new(url: server.url, token: token, app_name: app_name, refresh_interval: 0.2, timeout: 1,
                             disable_metrics: true, logger: logger)
    clients << c
    c
  end

  def wait_for(timeout, message, &)
    UnleashServer.wait_for(timeout: timeout, interval: 0.05, message: message, &)
  end

  def mode(path)
    File.lstat(path).mode & 0o7777
  end

  # A second client token, for the production environment.
  def production_token(server)
    body = { tokenName: "backup-spec-#{SecureRandom.hex(4)}", type: "client", environment: "production",
             projects: ["*"] }
    server.admin(:post, "/admin/api-tokens", body).fetch("secret")
  end

  def flip(server, name, times)
    times.times do |i|
      i.even? ? server.disable(name) : server.enable(name)
      sleep 0.3
    end
  end

  it "writes nothing into a directory others can write, and says so once however many refreshes" do
    server = UnleashServer.instance
    name = "refused-#{SecureRandom.hex(4)}"
    server.create_flag(name)
    server.add_strategy(name, strategy_name: "default")
    server.enable(name)
    Dir.mktmpdir("forkflag-shared-") do |dir|
      shared = File.join(dir, "shared")
      Dir.mkdir(shared)
      File.chmod(0o777, shared)
      c = Forkflag::Client.new(url: server.url, token: server.client_token, app_name: app_name, refresh_interval: 0.1,
                               timeout: 2, disable_metrics: true, logger: logger,
                               backup_path: File.join(shared, "flags.json"))
      clients << c
      wait_for(10, "ready") { c.enabled?(name) }
      flip(server, name, 4)
      wait_for(5, "the last change") { c.enabled?(name) }
      Forkflag::Logging.drain
      expect(log.string.scan("ignoring the backup file: unsafe #{shared}: it is writable by group or others").size)
        .to eq(1)
      expect(log.string.scan("the backup file is not updated: unsafe #{shared}: it is writable").size).to eq(1)
      expect(Dir.children(shared)).to eq([])
    end
  end

  it "leaves one whole backup when forked workers write it at once" do
    server = UnleashServer.instance
    name = "shared-#{SecureRandom.hex(4)}"
    server.create_flag(name)
    server.add_strategy(name, strategy_name: "default")
    server.enable(name)
    Dir.mktmpdir("forkflag-cache-") do |cache|
      saved_cache = ENV.fetch("XDG_CACHE_HOME", nil)
      ENV["XDG_CACHE_HOME"] = cache
      parent = Forkflag::Client.new(url: server.url, token: server.client_token, app_name: app_name,
                                    refresh_interval: 0.05, timeout: 2, disable_metrics: true, logger: logger)
      clients << parent
      wait_for(10, "ready") { parent.enabled?(name) }
      pids = Array.new(4) do
        Forking.fork_child do
          parent.enabled?(name) # starts this worker's thread
          sleep 2.5
          parent.close(timeout: 2)
        end
      end
      flip(server, name, 6)
      statuses = pids.map { |pid| Forking.reap(pid, deadline: Forking.now + 10).first }
      expect(statuses.map(&:success?)).to all(be(true))
      folder = File.join(cache, "forkflag-#{Process.euid}")
      expect(Dir.children(folder).size).to eq(1), Dir.children(folder).inspect
      backup = File.join(folder, Dir.children(folder).first)
      expect(File.lstat(backup).mode & 0o7777).to eq(0o600)
      expect(JSON.parse(File.read(backup)).fetch("features").map { |f| f["name"] }).to include(name)
      Forkflag::Logging.drain
      expect(log.string).not_to include("ignoring the backup file", "the backup file is not updated")
    ensure
      ENV["XDG_CACHE_HOME"] = saved_cache
    end
  end

  it "keeps one private backup per token in XDG_CACHE_HOME, 0700 and 0600 under a lax umask, and starts from it" do
    server = UnleashServer.start_private
    name = "backed-up-#{SecureRandom.hex(4)}"
    server.create_flag(name)
    server.add_strategy(name, strategy_name: "default")
    server.add_strategy(name, strategy_name: "default", environment: "production")
    server.enable(name) # on in development, off in production
    production = production_token(server)

    Dir.mktmpdir("forkflag-cache-") do |cache|
      saved_cache = ENV.fetch("XDG_CACHE_HOME", nil)
      saved_umask = File.umask(0o000)
      ENV["XDG_CACHE_HOME"] = cache
      folder = File.join(cache, "forkflag-#{Process.euid}")
      files = -> { Dir.children(folder).sort.map { |f| File.join(folder, f) } }

      development = client(server, server.client_token)
      wait_for(10, "development ready") { development.enabled?(name) }
      wait_for(5, "development backup") { File.directory?(folder) && files.call.size == 1 }
      prod = client(server, production)
      wait_for(10, "production ready") { prod.ready? }
      expect(prod.enabled?(name)).to be(false)
      wait_for(5, "production backup") { files.call.size == 2 }
      File.umask(saved_umask)

      expect(mode(folder)).to eq(0o700)
      expect(files.call.map { |f| mode(f) }).to eq([0o600, 0o600])
      expect(files.call.map { |f| File.basename(f) }).to all(match(/\A#{app_name}-\h{16}\.json\z/o))
      expect(files.call.map { |f| File.read(f) }).to all(include(name))
      expect(Dir.children(folder).join).not_to include(server.client_token, production)

      server.halt
      cold_development = client(server, server.client_token)
      cold_production = client(server, production)
      expect(cold_development.enabled?(name)).to be(true)
      expect(cold_production.enabled?(name)).to be(false)
      expect(cold_production.flag_names).to include(name)
      expect(cold_development.ready?).to be(false)
      Forkflag::Logging.drain
      expect(log.string).not_to include("ignoring the backup file", "the backup file is not updated")
    ensure
      File.umask(saved_umask) if saved_umask
      ENV["XDG_CACHE_HOME"] = saved_cache
    end
  ensure
    server&.stop
  end
end

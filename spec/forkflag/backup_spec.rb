# frozen_string_literal: true

require "fileutils"
require "logger"
require "socket"
require "stringio"
require "tmpdir"

# The backup file on a host with other users: at a cold start with the
# server unreachable (a closed loopback port), a client loads a backup only
# this user could have written, and refuses any other with one warning that
# names it, answering from `default:`. Run as root (as in CI) the planted
# files belong to nobody (uid 65534); run as another user, to root.
RSpec.describe "Forkflag backup file" do
  include FlagPayloads

  let(:log) { StringIO.new }
  let(:logger) { Logger.new(log, level: Logger::DEBUG) }
  let(:clients) { [] }
  let(:token) { "*:development.#{SecureRandom.hex(16)}" }
  let(:backed_up) { payload(flag("from-backup")) }

  around do |example|
    Dir.mktmpdir("forkflag-backup-spec-") do |dir|
      @dir = dir
      example.run
    ensure
      FileUtils.chmod_R("u+rwx", dir)
    end
  end

  after { clients.each { |c| c.close(timeout: 1) } }

  def closed_port_url
    server = TCPServer.new("127.0.0.1", 0)
    port = server.addr[1]
    server.close
    "http://127.0.0.1:#{port}/api"
  end

  def cold_client(**options)
    c = Forkflag::Client.new(url: closed_port_url, token: token, app_name: "backup-spec", refresh_interval: 0.1,
                             timeout: 1, disable_metrics: true, logger: logger, **options)
    clients << c
    c
  end

  def root?
    Process.euid.zero?
  end

  # A file of another user: one made here and given to nobody (as root), or
  # one of root's (as anyone else).
  def foreign_file
    return "/etc/passwd" unless root?

    path = File.join(@dir, "planted.json")
    File.write(path, backed_up)
    File.chmod(0o600, path)
    File.chown(65_534, 65_534, path)
    path
  end

  # The log lines that mention the backup, once the client's thread has
  # failed at least once (so that anything it had to say is said).
  def backup_warnings(client)
    UnleashServer.wait_for(timeout: 5, interval: 0.05, message: "a failed refresh") { client.stats[:failures] >= 1 }
    Forkflag::Logging.drain
    log.string.lines.grep(/backup/)
  end

  # `path` is the backup_path given, or (default: true) the folder the
  # default one names.
  def expect_refused(path, why, default: false)
    client = default ? cold_client : cold_client(backup_path: path)
    expect_defaults(client)
    warnings = backup_warnings(client)
    expect(warnings.size).to eq(1), "one warning about the backup, got: #{warnings.inspect}"
    expect(warnings.first).to match(/\bWARN\b/)
    expect(warnings.first).to include("forkflag: ignoring the backup file: unsafe #{path}: ", why)
    expect(log.string).not_to include(token)
  end

  def expect_defaults(client)
    expect(client.enabled?("from-backup")).to be(false)
    expect(client.enabled?("from-backup", default: true)).to be(true)
    expect(client.flag_names).to eq([])
  end

  it "answers from a backup this user wrote, with no warning about it" do
    path = File.join(@dir, "flags.json")
    File.write(path, backed_up)
    File.chmod(0o600, path)
    client = cold_client(backup_path: path)
    expect(client.enabled?("from-backup")).to be(true)
    expect(client.ready?).to be(false)
    expect(backup_warnings(client)).to eq([])
  end

  it "answers from default: when the backup belongs to another user, and says so once" do
    path = foreign_file
    expect_refused(path, "belongs to uid #{root? ? 65_534 : 0}, not to this process's user (uid #{Process.euid})")
  end

  it "answers from default: when the backup is writable by group or others" do
    path = File.join(@dir, "flags.json")
    File.write(path, backed_up)
    File.chmod(0o664, path)
    expect_refused(path, "writable by group or others (mode 0664)")
  end

  it "answers from default: when the backup is a symbolic link, even to a good backup" do
    real = File.join(@dir, "real.json")
    File.write(real, backed_up)
    File.chmod(0o600, real)
    link = File.join(@dir, "flags.json")
    File.symlink(real, link)
    expect_refused(link, "symbolic link")
  end

  it "answers from default: when the backup's directory is shared with other users, and says where to go" do
    shared = File.join(@dir, "shared")
    Dir.mkdir(shared)
    path = File.join(shared, "flags.json")
    File.write(path, backed_up)
    File.chmod(0o600, path)
    File.chmod(0o1777, shared)
    client = cold_client(backup_path: path)
    expect_defaults(client)
    warnings = backup_warnings(client)
    expect(warnings.size).to eq(1), warnings.inspect
    expect(warnings.first).to include("unsafe #{shared}: it is shared with other users (mode 1777)",
                                      'set backup_path: to a directory ending in "/"')
  end

  context "with the default backup_path" do
    around do |example|
      saved = ENV.fetch("XDG_CACHE_HOME", nil)
      ENV["XDG_CACHE_HOME"] = @dir
      example.run
    ensure
      ENV["XDG_CACHE_HOME"] = saved
    end

    let(:folder) { File.join(@dir, "forkflag-#{Process.euid}") }

    it "is a private folder in XDG_CACHE_HOME when that is absolute, else in the temporary directory" do
      expect(cold_client.config.backup_path).to eq("#{@dir}/")
      ENV["XDG_CACHE_HOME"] = "relative/cache"
      expect(cold_client.config.backup_path).to eq(File.join(Dir.tmpdir, ""))
      ENV.delete("XDG_CACHE_HOME")
      expect(cold_client.config.backup_path).to eq(File.join(Dir.tmpdir, ""))
      expect(cold_client(backup_path: false).config.backup_path).to be_nil
    end

    it "refuses a folder others can enter, with one warning naming it" do
      Dir.mkdir(folder, 0o755)
      File.chmod(0o755, folder)
      expect_refused(folder, "open to group or others (mode 0755); run chmod 700 on it", default: true)
    end

    it "refuses a folder another user made" do
      skip "only root can give a folder to another user" unless root?

      Dir.mkdir(folder, 0o700)
      File.chown(65_534, 65_534, folder)
      expect_refused(folder, "belongs to uid 65534, not to this process's user (uid 0)", default: true)
    end

    it "refuses a folder that is a symbolic link, even to a private directory of this user" do
      target = File.join(@dir, "elsewhere")
      Dir.mkdir(target, 0o700)
      File.symlink(target, folder)
      expect_refused(folder, "symbolic link", default: true)
    end
  end

  it "raises for a backup_path that names nothing" do
    expect { Forkflag::Client.new(url: closed_port_url, token: token, app_name: "a", backup_path: "") }
      .to raise_error(ArgumentError, %r{option :backup_path must be a file, a directory ending in "/", or false})
    expect { Forkflag::Client.new(url: closed_port_url, token: token, app_name: "a", backup_path: "a\0b") }
      .to raise_error(ArgumentError, /option :backup_path must not contain a NUL byte/)
    expect { Forkflag::Client.new(url: closed_port_url, token: token, app_name: "a", backup_path: true) }
      .to raise_error(TypeError, /option :backup_path/)
  end
end

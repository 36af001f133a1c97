# frozen_string_literal: true

require "securerandom"

# The client through a real TLS endpoint: Debian's nginx in front of the real
# Unleash server, with certificates from a CA made for the test (see
# spec/support/tls_proxy.rb). nginx's access log says on which TLS
# connection each request came, which is how the fork examples prove that
# the parent's keep-alive connection survives its children.
RSpec.describe "Forkflag::Client through TLS", :integration do
  before(:all) { @proxy = TlsProxy.start(UnleashServer.instance.url) }
  after(:all) { @proxy&.destroy }

  let!(:proxy) { @proxy }
  let!(:server) { UnleashServer.instance }
  let!(:app_name) { "forkflag-tls-#{SecureRandom.hex(4)}" }
  let!(:log) { StringIO.new }
  let!(:logger) { Logger.new(log, level: Logger::DEBUG) }
  let!(:channel) { Forking::Channel.new } # created before any fork
  let(:clients) { [] }
  let(:pids) { [] }
  let(:refresh_interval) { 0.2 }

  after do
    pids.each { |pid| Forking.reap(pid, deadline: Forking.now + 5) }
    clients.each { |c| c.close(timeout: 5) }
    channel.close
  end

  def client(url: proxy.url, **options)
    c = Forkflag::Client.new(url: url, token: server.client_token, app_name: app_name,
                             refresh_interval: refresh_interval, metrics_interval: 0.5, timeout: 2,
                             logger: logger, backup_path: false, **options)
    clients << c
    c
  end

  def wait_for(timeout, message, &)
    UnleashServer.wait_for(timeout: timeout, interval: 0.05, message: message, &)
  end

  def flag_with_default_strategy(prefix)
    name = "#{prefix}-#{SecureRandom.hex(4)}"
    server.create_flag(name)
    server.add_strategy(name, strategy_name: "default")
    name
  end

  def log_text
    Forkflag::Logging.drain
    log.string
  end

  # nginx's log lines for this example's client(s).
  def requests(connection_id: nil)
    proxy.requests.select do |r|
      r.app_name == app_name && (connection_id.nil? || r.unleash_connection_id == connection_id)
    end
  end

  def polls(connection_id)
    requests(connection_id: connection_id).select { |r| r.path.start_with?("/api/client/features") }
  end

  describe "with the test CA in tls_ca_file" do
    it "becomes ready and picks up each change within refresh_interval + 1 s" do
      name = flag_with_default_strategy("tls-flip")
      c = client(tls_ca_file: proxy.ca_file)
      expect(c.wait_until_ready(10)).to be(true)
      expect(c.enabled?(name)).to be(false)

      server.enable(name)
      wait_for(refresh_interval + 1, "#{name} on") { c.enabled?(name) }
      server.disable(name)
      wait_for(refresh_interval + 1, "#{name} off") { !c.enabled?(name) }

      # It did come through nginx, over one kept-alive TLS connection.
      seen = polls(c.stats[:connection_id])
      expect(seen.size).to be >= 3
      expect(seen.map(&:status).uniq - [200, 304]).to be_empty
      expect(seen.map(&:connection).uniq.size).to eq(1)
      expect(c.stats[:failures]).to eq(0)
    end

    it "reports exactly the evaluations made, and registers the instance" do
      name = flag_with_default_strategy("tls-counted")
      server.enable(name)
      c = client(tls_ca_file: proxy.ca_file, instance_id: "tls-#{app_name}")
      expect(c.wait_until_ready(10)).to be(true)
      wait_for(5, "flag visible") { c.flag_names.include?(name) }

      23.times { expect(c.enabled?(name)).to be(true) }
      expect(c.flush).to be(true)
      totals = wait_for(10, "metrics for #{name}") do
        t = server.yes_no_totals(name, app_name: app_name)
        t if t[:yes] + t[:no] >= 23
      end
      expect(totals.slice(:yes, :no)).to eq(yes: 23, no: 0)
      instances = server.wait_for_instance(app_name, "tls-#{app_name}")
      expect(instances).to include("tls-#{app_name}")
      expect(requests.map(&:path)).to include("/api/client/metrics", "/api/client/register")
    end

    it "verifies a DNS name as well (localhost, sent as SNI)" do
      c = client(url: proxy.url(host: "localhost"), tls_ca_file: proxy.ca_file)
      expect(c.wait_until_ready(10)).to be(true)
      expect(c.stats[:failures]).to eq(0)
    end
  end

  describe "refusing the certificate" do
    let(:bootstrap) { FlagPayloads.payload(FlagPayloads.flag("kept")) }

    # The client keeps serving its bootstrap, counts failures, logs one
    # clear message and sends nothing over the untrusted connection.
    def expect_refused(refused, message)
      wait_for(5, "failure counted") { refused.stats[:failures].positive? }
      expect_logged(message)
      expect(refused.ready?).to be(false)
      expect(refused.stats[:refreshes]).to eq(0)
      expect(refused.enabled?("kept")).to be(true)
      expect(requests).to be_empty
    end

    def expect_logged(message)
      wait_for(5, "failure logged") { log_text.include?("refresh failed") }
      text = log_text
      expect(text).to include(message)
      expect(text).not_to include(server.client_token)
    end

    it "refuses a certificate from a CA the system does not trust" do
      c = client(bootstrap: bootstrap)
      expect_refused(c, "TLS failed: certificate not trusted (UnknownIssuer)")
    end

    it "refuses a certificate from a CA other than the one in tls_ca_file" do
      c = client(bootstrap: bootstrap, tls_ca_file: proxy.other_ca_file)
      expect_refused(c, "TLS failed: certificate not trusted (UnknownIssuer)")
    end

    it "refuses a certificate that does not name the host connected to" do
      c = client(url: proxy.mismatch_url, bootstrap: bootstrap, tls_ca_file: proxy.ca_file)
      expect_refused(c, 'TLS failed: certificate not valid for "127.0.0.1"; it names DNS:localhost')
    end
  end

  it "connects to an untrusted certificate with tls_verify: false" do
    name = flag_with_default_strategy("tls-noverify")
    server.enable(name)
    c = client(tls_verify: false)
    expect(c.wait_until_ready(10)).to be(true)
    wait_for(5, "flag visible") { c.enabled?(name) }
    expect(c.stats[:failures]).to eq(0)
    # nginx logs a request once it is complete: a poll may still be in flight.
    expect(wait_for(5, "a request through the proxy in its log") { requests.any? }).to be(true)
  end

  # The roots (the system's store and tls_ca_file) are read once, when the
  # client is created: a restarted thread and a forked child use them as
  # read then. Taking the CA file away after the creation shows it.
  describe "roots read when the client is created" do
    let(:ca_copy) do
      path = File.join(proxy.dir, "ca-copy-#{SecureRandom.hex(4)}.pem")
      FileUtils.cp(proxy.ca_file, path)
      path
    end

    it "raises at creation, naming the file, for a tls_ca_file that holds no certificate" do
      junk = File.join(proxy.dir, "junk-#{SecureRandom.hex(4)}.pem")
      File.write(junk, "not a certificate\n")
      message = "tls_ca_file #{junk}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
      expect { client(tls_ca_file: junk) }.to raise_error(Forkflag::ConfigError, message)
    end

    it "trusts the server in a restarted thread after tls_ca_file is gone" do
      c = client(tls_ca_file: ca_copy)
      expect(c.wait_until_ready(10)).to be(true)
      expect(c.park(timeout: 5)).to be(true)
      File.delete(ca_copy)

      expect(c.refresh(timeout: 5)).to be(true)
      expect(c.stats).to include(thread_alive: true, failures: 0)
      expect(log_text).not_to match(/fail|error|cannot read/i)
    end

    it "trusts the server in a forked child, over a connection of its own, after tls_ca_file is gone" do
      flag = flag_with_default_strategy("tls-roots")
      server.enable(flag)
      c = client(tls_ca_file: ca_copy, metrics_interval: 60)
      expect(c.wait_until_ready(10)).to be(true)
      wait_for(5, "flag visible") { c.enabled?(flag) }
      File.delete(ca_copy)

      $stdout.flush
      $stderr.flush
      pid = fork do
        refreshed = c.refresh(timeout: 5)
        stats = c.stats
        channel.send_message(refreshed: refreshed, connection_id: stats[:connection_id],
                             failures: stats[:failures], refreshes: stats[:refreshes],
                             log: log_text[/.*(?:fail|error|cannot read).*/i])
        exit!(0)
      end
      pids << pid
      status, late = Forking.reap(pid, deadline: Forking.now + 15)
      pids.delete(pid)
      expect(late).to be(false)
      expect(status.exitstatus).to eq(0)
      child = channel.messages.last
      expect(child).to include(refreshed: true, failures: 0, log: nil)
      expect(child[:refreshes]).to be >= 1
      expect(child[:connection_id]).not_to eq(c.stats[:connection_id])
      # The child's polls came through nginx, over TLS, answered.
      seen = wait_for(5, "the child's polls in nginx's log") do
        p = polls(child[:connection_id])
        p unless p.empty?
      end
      expect(seen.map(&:status).uniq - [200, 304]).to be_empty
    end
  end

  describe "after a fork, the parent's keep-alive TLS connection" do
    # In the child: evaluates from the inherited snapshot, refreshes over a
    # connection of its own, reports, then ends as asked.
    def fork_child(parent_client, flag, ending)
      $stdout.flush
      $stderr.flush
      fork do
        begin
          value = parent_client.enabled?(flag)
          refreshed = parent_client.refresh(timeout: 5)
          stats = parent_client.stats
          channel.send_message(pid: Process.pid, value: value, refreshed: refreshed,
                               connection_id: stats[:connection_id], failures: stats[:failures])
          parent_client.close(timeout: 5) if ending == :close
        rescue StandardError => e
          warn("child #{Process.pid} failed: #{e.class}: #{e.message}")
          exit!(1)
        end
        exit!(0) unless ending == :exit

        exit(0) # at_exit handlers run: forkflag's closes the client
      end
    end

    def wait_for_polls(connection_id, count, what)
      wait_for(10, what) do
        seen = polls(connection_id)
        seen if seen.size >= count
      end
    end

    %i[exit exit! close].each do |ending|
      it "keeps working when a child refreshes and ends with #{ending}" do
        flag = flag_with_default_strategy("tls-fork")
        server.enable(flag)
        c = client(tls_ca_file: proxy.ca_file, metrics_interval: 60)
        expect(c.wait_until_ready(10)).to be(true)
        wait_for(5, "flag visible") { c.enabled?(flag) }
        parent_id = c.stats[:connection_id]
        before = wait_for_polls(parent_id, 3, "3 polls before the fork")
        expect(before.map(&:connection).uniq.size).to eq(1)
        kept = before.first.connection

        pid = fork_child(c, flag, ending)
        pids << pid
        status, late = Forking.reap(pid, deadline: Forking.now + 15)
        pids.delete(pid)
        expect(late).to be(false)
        expect(status.exitstatus).to eq(0)
        child = channel.messages.last
        expect(child).to include(pid: pid, value: true, refreshed: true, failures: 0)
        expect(child[:connection_id]).not_to eq(parent_id)

        polled = polls(parent_id).size
        wait_for_polls(parent_id, polled + 3, "3 parent polls after the child ended")
        expect(c.enabled?(flag)).to be(true)

        # Every request of the parent, before and after, on the same TLS
        # connection, in order; the child's on connections of its own.
        parent = requests(connection_id: parent_id)
        expect(parent.map(&:connection).uniq).to eq([kept])
        serials = parent.map(&:connection_requests)
        expect(serials.each_cons(2).all? { |a, b| b > a }).to be(true), serials.inspect
        expect(parent.map(&:status).uniq - [200, 202, 304]).to be_empty
        of_child = requests(connection_id: child[:connection_id])
        expect(of_child.map(&:path)).to include(start_with("/api/client/features"))
        expect(of_child.map(&:connection)).not_to include(kept)

        expect(c.stats[:failures]).to eq(0)
        expect(log_text).not_to match(/fail|error/i)
      end
    end
  end
end

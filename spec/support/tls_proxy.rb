# frozen_string_literal: true

require "fileutils"
require "socket"
require "tmpdir"
require "uri"
require_relative "../../support/loopback"

# A real TLS endpoint in front of the real Unleash server, for the TLS specs:
# Debian's nginx (nginx-light), run as one process of the test's user with
# its own configuration, certificates made with the openssl command line in
# a Dir.mktmpdir.
#
#   proxy = TlsProxy.start(UnleashServer.instance.url)
#   proxy.url                  # https://127.0.0.1:<port>/api (cert names 127.0.0.1 and localhost)
#   proxy.mismatch_url         # https://127.0.0.1:<port>/api (cert names only localhost)
#   proxy.plain_url            # http://127.0.0.1:<port>/api (the same proxy without TLS)
#   proxy.ca_file              # the test CA that issued both certificates
#   proxy.other_ca_file        # an unrelated CA
#   proxy.requests             # the access log, parsed (see Request)
#   proxy.stop                 # TERM, then KILL after a deadline
#
# nginx keeps client connections alive (HTTP/1.1, 75 s idle, many requests
# per connection) and speaks HTTP/1.1 to the upstream. Its access log names
# the connection each request came on ($connection: a serial number per
# accepted connection; $connection_requests: 1, 2, ... on that connection),
# so a spec can prove which TLS connection carried which request.
class TlsProxy
  class Error < StandardError; end

  NGINX = "/usr/sbin/nginx"
  SETPRIV = "/usr/bin/setpriv"
  OPENSSL = "openssl"
  START_TIMEOUT = 10
  STOP_TIMEOUT = 5

  # One line of the access log.
  Request = Struct.new(:connection, :connection_requests, :http_method, :path, :status, :unleash_connection_id,
                       :app_name, keyword_init: true)

  # Fields separated by tabs; header values cannot hold one.
  LOG_FORMAT = %w[$connection $connection_requests $request $status $http_unleash_connection_id
                  $http_unleash_appname].join("\t")

  # Starts nginx on free loopback ports in front of upstream_url (an
  # http://host:port/... URL); raises Error with nginx's error log if it
  # does not come up. Tries a few ports in case another process takes the
  # one chosen in the meantime.
  def self.start(upstream_url)
    proxy = new(upstream_url)
    attempts = 3
    begin
      proxy.start
    rescue Error
      attempts -= 1
      retry if attempts.positive? && proxy.port_taken?
      proxy.stop
      raise
    end
    proxy
  end

  attr_reader :dir, :ca_file, :other_ca_file, :port, :mismatch_port, :plain_port, :access_log, :error_log, :pid

  def initialize(upstream_url)
    upstream = URI(upstream_url)
    raise ArgumentError, "upstream must be http://, got #{upstream_url}" unless upstream.scheme == "http"

    @upstream = "#{upstream.host}:#{upstream.port}"
    @dir = Dir.mktmpdir("forkflag-tls-")
    @owner_pid = Process.pid
    @access_log = File.join(@dir, "access.log")
    @error_log = File.join(@dir, "error.log")
    make_certificates
    at_exit { destroy }
  end

  # The API URL through TLS. host: "127.0.0.1" or "localhost" (both named
  # by the certificate).
  def url(host: "127.0.0.1")
    "https://#{host}:#{port}/api"
  end

  # The API URL of a server whose certificate names only DNS:localhost,
  # reached at 127.0.0.1: a host name mismatch.
  def mismatch_url
    "https://127.0.0.1:#{mismatch_port}/api"
  end

  # The API URL through the same proxy without TLS: what the benchmarks
  # compare the TLS URL with (same server, same proxy, same payload).
  def plain_url
    "http://127.0.0.1:#{plain_port}/api"
  end

  # The access log so far, parsed.
  def requests
    return [] unless File.exist?(access_log)

    File.readlines(access_log, chomp: true).filter_map { |line| parse(line) }
  end

  # Starts nginx and waits (bounded) until its ports accept connections.
  def start
    stop
    @port = Loopback.free_port
    @mismatch_port = Loopback.free_port
    @plain_port = Loopback.free_port
    File.write(File.join(dir, "nginx.conf"), config)
    File.write(error_log, "")
    # setpriv --pdeathsig: nginx dies with this process even if it crashes
    # before its at_exit could stop it.
    command = [SETPRIV, "--pdeathsig", "KILL", "--",
               NGINX, "-p", "#{dir}/", "-c", File.join(dir, "nginx.conf"), "-e", error_log]
    @pid = Process.spawn(*command, in: File::NULL, out: [error_log, "a"], err: %i[child out], pgroup: true)
    wait_until_listening
  end

  # Did the last start fail because a port was taken?
  def port_taken?
    File.exist?(error_log) && File.read(error_log).include?("Address already in use")
  end

  # Stops nginx (TERM, then KILL past the deadline) and reaps it; only in
  # the process that started it. Idempotent.
  def stop
    return unless Process.pid == @owner_pid && @pid

    pid = @pid
    @pid = nil
    return if reap(pid, STOP_TIMEOUT, "TERM")

    reap(pid, STOP_TIMEOUT, "KILL")
  end

  # Stops nginx and removes the temporary directory.
  def destroy
    stop
    FileUtils.rm_rf(dir) if Process.pid == @owner_pid
  end

  private

  def parse(line)
    connection, serial, request, status, connection_id, app_name = line.split("\t")
    return nil unless app_name

    http_method, path, = request.split
    Request.new(connection: connection.to_i, connection_requests: serial.to_i, http_method: http_method, path: path,
                status: status.to_i, unleash_connection_id: connection_id, app_name: app_name)
  end

  def wait_until_listening
    deadline = now + START_TIMEOUT
    loop do
      _, status = Process.waitpid2(@pid, Process::WNOHANG)
      if status
        @pid = nil
        failed("exited with #{status.inspect}")
      end
      return if [port, mismatch_port, plain_port].all? { |p| listening?(p) }

      failed("did not listen on 127.0.0.1:#{port} within #{START_TIMEOUT}s") if now > deadline
      sleep 0.05
    end
  end

  def failed(why)
    log = File.exist?(error_log) ? File.read(error_log) : "(no error log)"
    raise Error, "nginx #{why}; its error log:\n#{log}"
  end

  def listening?(port)
    Socket.tcp("127.0.0.1", port, connect_timeout: 0.5).close
    true
  rescue SystemCallError
    false
  end

  def reap(pid, timeout, signal)
    begin
      Process.kill(signal, pid)
    rescue Errno::ESRCH
      nil
    end
    deadline = now + timeout
    loop do
      return true if Process.waitpid(pid, Process::WNOHANG)
      return false if now > deadline

      sleep 0.02
    end
  rescue Errno::ECHILD
    true
  end

  def now
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  def path(name)
    File.join(dir, name)
  end

  # ---- certificates ----------------------------------------------------------

  # A test CA; a certificate it issues for 127.0.0.1 and localhost; one it
  # issues for localhost only; and an unrelated CA. P-256 keys, valid for
  # two days.
  def make_certificates
    @ca_file = make_ca("ca", "forkflag test CA")
    @other_ca_file = make_ca("other-ca", "forkflag unrelated CA")
    make_server_cert("server", "IP:127.0.0.1,DNS:localhost")
    make_server_cert("localhost-only", "DNS:localhost")
  end

  def make_ca(name, common_name)
    openssl("req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", path("#{name}.key"), "-out", path("#{name}.pem"), "-days", "2", "-subj", "/CN=#{common_name}",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    path("#{name}.pem")
  end

  def make_server_cert(name, alt_names)
    File.write(path("#{name}.ext"), <<~EXT)
      basicConstraints = critical,CA:FALSE
      keyUsage = critical,digitalSignature
      extendedKeyUsage = serverAuth
      subjectAltName = #{alt_names}
    EXT
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", path("#{name}.key"), "-out", path("#{name}.csr"), "-subj", "/CN=forkflag test server")
    openssl("x509", "-req", "-in", path("#{name}.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
            "-set_serial", rand(1 << 62).to_s, "-days", "2", "-extfile", path("#{name}.ext"),
            "-out", path("#{name}.pem"))
  end

  def openssl(*args)
    out = path("openssl.out")
    return if system(OPENSSL, *args, in: File::NULL, out: out, err: out)

    raise Error, "openssl #{args.first(2).join(" ")} failed: #{File.read(out)}"
  end

  # ---- nginx -------------------------------------------------------------------

  def config
    <<~CONF
      daemon off;
      master_process off;
      worker_processes 1;
      pid #{path("nginx.pid")};
      error_log #{error_log} info;
      events { worker_connections 128; }
      http {
        log_format forkflag "#{LOG_FORMAT}";
        access_log #{access_log} forkflag;
        client_body_temp_path #{path("client_body")};
        proxy_temp_path #{path("proxy")};
        fastcgi_temp_path #{path("fastcgi")};
        uwsgi_temp_path #{path("uwsgi")};
        scgi_temp_path #{path("scgi")};
        keepalive_timeout 75s;
        keepalive_requests 100000;
        #{server_block(port, "server")}
        #{server_block(mismatch_port, "localhost-only")}
        #{server_block(plain_port, nil)}
      }
    CONF
  end

  # A server on listen_port: TLS with the certificate named cert, or plain
  # HTTP when cert is nil.
  def server_block(listen_port, cert)
    tls = if cert
            "listen 127.0.0.1:#{listen_port} ssl;\n" \
              "ssl_certificate #{path("#{cert}.pem")};\n" \
              "ssl_certificate_key #{path("#{cert}.key")};"
          else
            "listen 127.0.0.1:#{listen_port};"
          end
    <<~BLOCK
      server {
          #{tls}
          location / {
            proxy_pass http://#{@upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_read_timeout 30s;
          }
        }
    BLOCK
  end
end

# frozen_string_literal: true

# The server the http and https variants of benchmarks 3, 4 and 5 talk to:
# the real Unleash server (spec/support/unleash_server.rb: its own
# PostgreSQL and node on free loopback ports) behind Debian's nginx
# (spec/support/tls_proxy.rb), which serves it over TLS with a CA made in
# the run and, on another port, over plain HTTP. The two URLs differ only by
# TLS: same proxy, same server, same payload. Both stop when the benchmark
# ends. HTTPS=0 leaves these variants out.
require_relative "support"
require_relative "../spec/support/unleash_server"
require_relative "../spec/support/tls_proxy"

# The benchmarks' server, for their http and https variants.
module Bench
  # A running server: URLs of the same proxy with and without TLS, the CA
  # that signed the proxy's certificate, and the flags the server holds.
  Server = Struct.new(:unleash, :proxy, :names, keyword_init: true) do
    # A live client of the server, through TLS (:https) or not (:http),
    # with no backup file and no metrics (as the file clients of the
    # benchmarks). The system's roots are loaded too: tls_ca_file adds to
    # them.
    def client(kind, **options)
      tls = kind == :https ? { tls_ca_file: proxy.ca_file } : {}
      Forkflag::Client.new(url: url(kind), token: unleash.client_token, app_name: "forkflag-bench", backup_path: false,
                           disable_metrics: true,
                           **tls, **options)
    end

    def url(kind)
      { http: proxy.plain_url, https: proxy.url }.fetch(kind)
    end

    def describe
      "nginx #{`#{TlsProxy::NGINX} -v 2>&1`[%r{nginx/(\S+)}, 1]} in front of unleash-server at " \
        "#{unleash.url} (http #{url(:http)}, https #{url(:https)})"
    end
  end

  module_function

  # Whether to run the http and https variants (HTTPS=0: no).
  def server_variants?
    ENV.fetch("HTTPS", "1") != "0"
  end

  # Starts the Unleash server and the proxy, with the flags `names` (default
  # strategy, on) created on it.
  def server(names)
    unleash = UnleashServer.instance
    names.each do |name|
      next if (unleash.flag(name) rescue nil) # rubocop:disable Style/RescueModifier

      unleash.create_flag(name)
      unleash.add_strategy(name, strategy_name: "default")
      unleash.enable(name)
    end
    Server.new(unleash: unleash, proxy: TlsProxy.start(unleash.url), names: names)
  end

  # Private memory of a process (KiB): Private_Clean + Private_Dirty.
  def private_kb(pid = "self")
    rollup = File.read("/proc/#{pid}/smaps_rollup")
    %w[Private_Clean Private_Dirty].sum { |key| Integer(rollup[/^#{key}:\s+(\d+) kB/, 1]) }
  end
end

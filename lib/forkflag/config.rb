# frozen_string_literal: true

require "logger"
require "socket"
require "tmpdir"
require "securerandom"
require "uri"

module Forkflag
  # Validated options of a {Client}. Every option is checked when the client
  # is created; a wrong one raises ArgumentError (or TypeError) naming it and
  # what was expected. The token never appears in a message.
  class Config
    # Largest response body accepted from the server, by default (64 MiB).
    DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024 * 1024

    # Option name => [default, description]. The README's configuration
    # table is this list.
    OPTIONS = {
      url: [nil, "Unleash API URL, e.g. https://unleash.example.com/api"],
      token: [nil, "client (backend) API token, sent as Authorization; required with url:"],
      app_name: [nil, "application name reported to Unleash; required with url:"],
      instance_id: ["<hostname>-<pid>-<random>", "instance id reported to Unleash"],
      environment: [nil, "environment reported with metrics (the token decides which flags you get)"],
      project: [nil, "fetch only this project's flags"],
      name_prefix: [nil, "fetch only flags whose names start with this"],
      refresh_interval: [15, "seconds between refreshes (a file: source is checked at least every second)"],
      metrics_interval: [60, "seconds between metrics reports"],
      timeout: [10, "seconds: bound on each request, and on close and flush"],
      exit_timeout: [2, "seconds: bound on closing the client at process exit (metrics not sent by then are " \
                        "dropped), and on parking it before a preforking server forks"],
      custom_headers: [{}, "extra HTTP headers (Hash of String => String)"],
      backup_path: ["$XDG_CACHE_HOME/ (when absolute), else <tmpdir>/",
                    "last good payload, loaded at start: a file, or a directory ending in / where it is kept " \
                    "in a private folder forkflag-<uid>; false disables it"],
      disable_metrics: [false, "do not register or send metrics"],
      tls_ca_file: [nil, "PEM file of CA certificates to trust (besides the system's)"],
      tls_verify: [true, "verify the server's certificate (turn off only for testing)"],
      max_payload_bytes: [DEFAULT_MAX_PAYLOAD_BYTES, "largest response accepted from the server"],
      bootstrap: [nil, "client-features JSON String to start from (wins over the backup)"],
      file: [nil, "client-features JSON file to load and re-read when it changes (instead of url:)"],
      logger: [nil, "Logger for forkflag's messages (default: WARN and above to $stderr)"]
    }.freeze

    attr_reader(*OPTIONS.keys)

    def initialize(**options)
      unknown = options.keys - OPTIONS.keys
      unless unknown.empty?
        raise ArgumentError,
              "unknown option#{"s" if unknown.size > 1} #{unknown.map(&:inspect).join(", ")} " \
              "for Forkflag::Client.new; valid options: #{OPTIONS.keys.map(&:inspect).join(", ")}"
      end
      @given = options
      validate!
      @given = nil
      freeze
    end

    def inspect
      "#<Forkflag::Config url=#{url.inspect} app_name=#{app_name.inspect} token=#{token ? "[secret]" : "nil"}>"
    end
    alias to_s inspect

    # The options the native client reads.
    # @api private
    def native_options(client_id)
      {
        url: url, token: token, app_name: app_name, instance_id: instance_id, environment: environment,
        project: project, name_prefix: name_prefix, refresh_interval: refresh_interval.to_f,
        metrics_interval: metrics_interval.to_f, timeout: timeout.to_f, custom_headers: custom_headers.to_a,
        backup_path: backup_path || nil, disable_metrics: disable_metrics, tls_ca_file: tls_ca_file,
        tls_verify: tls_verify, max_payload_bytes: max_payload_bytes, bootstrap: bootstrap, file: file,
        client_id: client_id, sdk: "forkflag:#{VERSION}",
        user_agent: "forkflag/#{VERSION} (#{RUBY_ENGINE} #{RUBY_VERSION}; #{RUBY_PLATFORM})",
        platform_name: RUBY_ENGINE, platform_version: RUBY_VERSION
      }
    end

    private

    def given(name)
      @given.fetch(name, nil)
    end

    def validate!
      @bootstrap = string(:bootstrap)
      @file = path(:file)
      @url = url_option
      @token = secret_token
      @app_name = string(:app_name)
      @instance_id = string(:instance_id) || "#{Socket.gethostname}-#{Process.pid}-#{SecureRandom.hex(4)}"
      @environment = string(:environment)
      @project = string(:project)
      @name_prefix = string(:name_prefix)
      validate_timing!
      @custom_headers = headers_option
      @disable_metrics = boolean(:disable_metrics, false)
      @tls_verify = boolean(:tls_verify, true)
      @tls_ca_file = ca_file_option
      @max_payload_bytes = integer(:max_payload_bytes, DEFAULT_MAX_PAYLOAD_BYTES)
      @logger = logger_option
      validate_sources!
      @backup_path = backup_option
    end

    def validate_timing!
      @refresh_interval = seconds(:refresh_interval, 15)
      @metrics_interval = seconds(:metrics_interval, 60)
      @timeout = seconds(:timeout, 10)
      @exit_timeout = seconds(:exit_timeout, 2)
    end

    def validate_sources!
      if @url && @file
        raise ArgumentError, "give either url: (an Unleash server) or file: (a local flags file), not both"
      end

      validate_server! if @url
      return if @url || @file || @bootstrap

      raise ArgumentError, "Forkflag::Client.new needs a source of flags: url:, file: or bootstrap:"
    end

    def validate_server!
      raise ArgumentError, "option :app_name is required with url:" unless @app_name
      raise ArgumentError, "option :token is required with url: (a client/backend API token)" unless @token
    end

    def string(name)
      value = given(name)
      return nil if value.nil?
      return value.to_str.dup.freeze if value.respond_to?(:to_str)

      raise TypeError, "option #{name.inspect} must be a String, got #{value.inspect} (#{value.class})"
    end

    def path(name)
      value = given(name)
      return value.to_path.dup.freeze if value.respond_to?(:to_path)

      string(name)
    end

    def secret_token
      value = given(:token)
      return nil if value.nil?
      raise TypeError, "option :token must be a String, got a #{value.class}" unless value.respond_to?(:to_str)

      token = value.to_str
      raise ArgumentError, "option :token is empty" if token.strip.empty?
      raise ArgumentError, "option :token must not contain line breaks" if token.match?(/[\r\n]/)

      token.dup.freeze
    end

    def url_option
      url = string(:url)
      return nil unless url

      uri = parse_url(url)
      unless %w[http https].include?(uri.scheme) && !uri.host.to_s.empty?
        raise ArgumentError, "option :url must be an http:// or https:// URL with a host, got #{url.inspect}"
      end
      if uri.query || uri.fragment || uri.userinfo
        raise ArgumentError, "option :url must not have a query, fragment or user info, got #{url.inspect}"
      end

      url.chomp("/").freeze
    end

    def parse_url(url)
      URI.parse(url)
    rescue URI::InvalidURIError => e
      raise ArgumentError, "option :url is not a valid URL (#{url.inspect}): #{e.message}"
    end

    def seconds(name, default)
      value = given(name)
      return default if value.nil?
      unless value.is_a?(Numeric) && value.real? && value.positive? && value.to_f.finite?
        raise ArgumentError, "option #{name.inspect} must be a positive number of seconds, got #{value.inspect}"
      end

      value
    end

    def integer(name, default)
      value = given(name)
      return default if value.nil?
      return value if value.is_a?(Integer) && value.positive?

      raise ArgumentError, "option #{name.inspect} must be a positive Integer, got #{value.inspect}"
    end

    def boolean(name, default)
      value = given(name)
      return default if value.nil?
      return value if [true, false].include?(value)

      raise TypeError, "option #{name.inspect} must be true or false, got #{value.inspect}"
    end

    HEADER_NAME = /\A[!#$%&'*+\-.^_`|~0-9A-Za-z]+\z/
    private_constant :HEADER_NAME

    def headers_option
      value = given(:custom_headers)
      return {}.freeze if value.nil?
      unless value.is_a?(Hash)
        raise TypeError, "option :custom_headers must be a Hash of String => String, got #{value.class}"
      end

      value.to_h do |k, v|
        name = k.to_s
        unless name.match?(HEADER_NAME)
          raise ArgumentError, "option :custom_headers has an invalid header name #{k.inspect}"
        end

        text = v.to_s
        raise ArgumentError, "option :custom_headers value of #{name} contains a line break" if text.match?(/[\r\n]/)

        [name.freeze, text.freeze]
      end.freeze
    end

    def ca_file_option
      file = path(:tls_ca_file)
      return nil unless file
      return file if File.file?(file) && File.readable?(file)

      raise ArgumentError, "option :tls_ca_file #{file.inspect} is not a readable file"
    end

    def logger_option
      value = given(:logger)
      return Logger.new($stderr, level: Logger::WARN, progname: "forkflag") if value.nil?
      return value if %i[debug info warn error].all? { |m| value.respond_to?(m) }

      raise TypeError, "option :logger must respond to debug, info, warn and error, got #{value.inspect}"
    end

    # A file, or a directory (ending in "/") where the native side keeps the
    # backup in a private folder of its own, named and checked there. The
    # default directory is $XDG_CACHE_HOME when it is an absolute path, else
    # the temporary directory: a service user (www-data) often has no
    # writable home, and its home may be the web root.
    def backup_option
      value = given(:backup_path)
      return nil if value == false
      return default_backup_directory if value.nil?

      file = path(:backup_path)
      if file.empty? || file.include?("\0")
        raise ArgumentError, "option :backup_path must be a file, a directory ending in \"/\", or false; " \
                             "got #{file.inspect}"
      end

      file
    end

    def default_backup_directory
      return nil unless @url # a file or a bootstrap is its own backup

      cache = ENV.fetch("XDG_CACHE_HOME", "")
      File.join(cache.start_with?("/") ? cache : Dir.tmpdir, "")
    end
  end
end

# frozen_string_literal: true

require "logger"
require "socket"
require "tmpdir"
require "securerandom"

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
      custom_headers: [{}, "extra HTTP headers: a Hash of String => String, or a Proc giving one, called before " \
                           "each request (an Authorization it gives replaces the token)"],
      backup_path: ["$XDG_CACHE_HOME/ (when absolute), else <tmpdir>/",
                    "last good payload, loaded at start: a file, or a directory ending in / where it is kept " \
                    "in a private folder forkflag-<uid>; false disables it"],
      disable_metrics: [false, "do not register or send metrics"],
      tls_ca_file: [nil, "PEM file of CA certificates to trust (besides the system's)"],
      tls_verify: [true, "verify the server's certificate (turn off only for testing)"],
      max_payload_bytes: [DEFAULT_MAX_PAYLOAD_BYTES, "largest response accepted from the server"],
      bootstrap: [nil, "client-features JSON String to start from (wins over the backup)"],
      file: [nil, "client-features JSON file to load and re-read when it changes (instead of url:)"],
      logger: [nil, "Logger for forkflag's messages (default: WARN and above to $stderr)"],
      instrument_evaluations: [0, "fraction of evaluations (0 to 1, sampled at random) instrumented as " \
                                  "evaluation.forkflag through ActiveSupport::Notifications; 0 instruments none"],
      strategies: [nil, "custom strategies: a Hash of name => strategy (a callable, or an object with enabled? or " \
                        "is_enabled?), or an Array of strategies that answer name; see Forkflag::Strategies"]
    }.freeze

    # @!attribute [r] url
    #   @return [String, nil] the Unleash API URL
    #
    # @!attribute [r] token
    #   @return [String, nil] the client (backend) API token (never printed by {#inspect})
    #
    # @!attribute [r] app_name
    #   @return [String, nil] the application name reported to Unleash
    #
    # @!attribute [r] instance_id
    #   @return [String] the instance id reported to Unleash
    #
    # @!attribute [r] environment
    #   @return [String, nil] the environment reported with metrics
    #
    # @!attribute [r] project
    #   @return [String, nil] the project whose flags are fetched (nil: all)
    #
    # @!attribute [r] name_prefix
    #   @return [String, nil] the prefix of the flag names fetched (nil: all)
    #
    # @!attribute [r] refresh_interval
    #   @return [Numeric] seconds between refreshes
    #
    # @!attribute [r] metrics_interval
    #   @return [Numeric] seconds between metrics reports
    #
    # @!attribute [r] timeout
    #   @return [Numeric] seconds: the bound on each request, and the default one of close and flush
    #
    # @!attribute [r] exit_timeout
    #   @return [Numeric] seconds: the bound on closing the client at process exit, and on parking it
    #
    # @!attribute [r] custom_headers
    #   @return [Hash{String => String}] the extra HTTP headers (the first answer of a Proc given for them)
    #
    # @!attribute [r] backup_path
    #   @return [String, nil] the backup file or directory (a directory ends in "/"); nil when there is none
    #
    # @!attribute [r] disable_metrics
    #   @return [Boolean] whether registering and metrics are off
    #
    # @!attribute [r] tls_ca_file
    #   @return [String, nil] the PEM file of extra CA certificates
    #
    # @!attribute [r] tls_verify
    #   @return [Boolean] whether the server's certificate is verified
    #
    # @!attribute [r] max_payload_bytes
    #   @return [Integer] the largest response accepted
    #
    # @!attribute [r] bootstrap
    #   @return [String, nil] the client-features JSON the client started from
    #
    # @!attribute [r] file
    #   @return [String, nil] the client-features JSON file the client watches
    #
    # @!attribute [r] logger
    #   @return [Object] where forkflag's messages go (responds to debug, info, warn, error)
    #
    # @!attribute [r] strategies
    #   @return [Strategies, nil] the custom strategies (nil: none)
    #
    # @!attribute [r] instrument_evaluations
    #   @return [Numeric] the fraction of evaluations instrumented as
    #     +evaluation.forkflag+ when ActiveSupport::Notifications is loaded (0: none)

    # A reader per option (documented above, for YARD).
    attr_reader(*OPTIONS.keys)

    def initialize(**options)
      unknown = options.keys - OPTIONS.keys
      unless unknown.empty?
        raise ArgumentError,
              "unknown option#{"s" if unknown.size > 1} #{unknown.map { |k| Untrusted.describe(k) }.join(", ")} " \
              "for Forkflag::Client.new; valid options: #{OPTIONS.keys.map(&:inspect).join(", ")}"
      end
      @given = options
      validate!
      @given = nil
      freeze
    end

    # The URL and app name; the token only as "[secret]".
    #
    # @return [String]
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
        header_hook: !@header_source.nil?,
        backup_path: backup_path || nil, disable_metrics: disable_metrics, tls_ca_file: tls_ca_file,
        tls_verify: tls_verify, max_payload_bytes: max_payload_bytes, bootstrap: bootstrap, file: file,
        strategies: strategies, client_id: client_id, sdk: "forkflag:#{VERSION}",
        instrument_evaluations: instrument_evaluations.to_f, events: Events.active_support?,
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
      @app_name = string(:app_name, header: true)
      @instance_id = string(:instance_id, header: true) ||
                     "#{Socket.gethostname}-#{Process.pid}-#{SecureRandom.hex(4)}"
      @environment = string(:environment, header: true)
      @project = string(:project, header: true)
      @name_prefix = string(:name_prefix, header: true)
      validate_timing!
      @custom_headers = headers_option
      @disable_metrics = boolean(:disable_metrics, false)
      @tls_verify = boolean(:tls_verify, true)
      @tls_ca_file = ca_file_option
      @max_payload_bytes = integer(:max_payload_bytes, DEFAULT_MAX_PAYLOAD_BYTES)
      @logger = logger_option
      @instrument_evaluations = sample_rate(:instrument_evaluations)
      @strategies = strategies_option
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

    # A String option; header: the value travels in a request (see
    # Arguments.string).
    def string(name, header: false)
      Arguments.string(given(name), "option #{name.inspect}", header: header)
    end

    def path(name)
      Arguments.path(given(name), "option #{name.inspect}")
    end

    def secret_token
      value = given(:token)
      return nil if nil.equal?(value)
      unless Untrusted.kind?(value, String) || Untrusted.responds_to?(value, :to_str)
        # Never the value: it may be a token of the wrong type.
        raise TypeError, "option :token must be a String, got an instance of #{Untrusted.class_name(value)}"
      end

      token = begin
        Arguments.string(value, "option :token", header: true)
      rescue ArgumentError, TypeError => e
        # A new message without the token's text, and no cause that has it.
        raise e.class, secret_problem(e), cause: nil
      end
      raise ArgumentError, "option :token is empty" if token.strip.empty?

      token
    end

    # The problem with a token, without its text.
    def secret_problem(error)
      case error.message
      when /control characters/ then "option :token must not contain line breaks or control characters"
      when /longer than/ then "option :token is longer than #{Arguments::MAX_HEADER_BYTES} bytes"
      when /UTF-8/ then "option :token must be valid UTF-8 text"
      else "option :token must be a String"
      end
    end

    # The URL checked by the native client's own parser (the one that reads
    # it to connect), which raises ArgumentError naming option :url, the
    # value and what is wrong with it.
    def url_option
      url = string(:url, header: true)
      return nil unless url

      Forkflag.__send__(:_check_url, url)
      url.chomp("/").freeze
    end

    def seconds(name, default)
      value = given(name)
      return default if nil.equal?(value)

      Arguments.seconds(value, "option #{name.inspect}")
    end

    def integer(name, default)
      value = given(name)
      return default if nil.equal?(value)

      Arguments.positive_integer(value, "option #{name.inspect}")
    end

    # A fraction from 0 to 1 (0 when not given).
    def sample_rate(name)
      value = given(name)
      return 0 if nil.equal?(value)

      rate = Arguments.fraction(value, "option #{name.inspect}")
      Untrusted.kind?(value, Integer) || Untrusted.kind?(value, Float) ? value : rate
    end

    def boolean(name, default)
      value = given(name)
      return default if nil.equal?(value)

      Arguments.boolean(value, "option #{name.inspect}")
    end

    def headers_option
      value = given(:custom_headers)
      return {}.freeze if nil.equal?(value)

      if !Untrusted.kind?(value, Hash) && Untrusted.responds_to?(value, :call)
        @header_source = value
        return headers_from(value.call)
      end
      Arguments.hash_value(value, "option :custom_headers", "a Hash of String => String, or a Proc giving one")
      headers_from(value)
    end

    public

    # The custom headers as a Proc given for custom_headers: gives them
    # now (called before each request).
    # @return [Hash{String => String}, nil] nil without such a Proc
    # @raise [ArgumentError, TypeError] for what the Proc gave that cannot be sent
    # @api private
    def request_headers
      @header_source && headers_from(@header_source.call)
    end

    private

    # Checked headers from a Hash (what the option or its Proc gave).
    def headers_from(value)
      Arguments.hash_value(value, "option :custom_headers", "a Hash of String => String, or a Proc giving one")
      value.each_with_object({}) { |(k, v), headers| headers.store(*header(k, v)) }.freeze
    end

    # One custom header: a valid name (String or Symbol) and a String
    # value (or a Symbol or a number) without line breaks.
    def header(key, value)
      name = Arguments.name(key, "option :custom_headers: a header name")
      if Forkflag.__send__(:_header_problem, name, "") == :invalid_name
        raise ArgumentError, "option :custom_headers has an invalid header name #{Untrusted.describe(name)}"
      end

      raise TypeError, "option :custom_headers: the value of #{name} must be a String, got nil" if nil.equal?(value)

      [name, Arguments.text(value, "option :custom_headers: the value of #{name}", header: true)]
    end

    def ca_file_option
      file = path(:tls_ca_file)
      return nil unless file
      return file if File.file?(file) && File.readable?(file)

      raise ArgumentError, "option :tls_ca_file #{Untrusted.describe(file)} is not a readable file"
    end

    LOGGER_METHODS = %i[debug info warn error].freeze
    private_constant :LOGGER_METHODS

    def strategies_option
      given = given(:strategies)
      return nil if nil.equal?(given)

      strategies = Strategies.new(given, logger: @logger, app_name: @app_name, environment: @environment)
      strategies.names.empty? ? nil : strategies
    end

    def logger_option
      value = given(:logger)
      return Logger.new($stderr, level: Logger::WARN, progname: "forkflag") if nil.equal?(value)
      return value if LOGGER_METHODS.all? { |m| Untrusted.responds_to?(value, m) }

      raise TypeError, "option :logger must respond to debug, info, warn and error, got #{Untrusted.describe(value)}"
    end

    # A file, or a directory (ending in "/") where the native side keeps the
    # backup in a private folder of its own, named and checked there. The
    # default directory is $XDG_CACHE_HOME when it is an absolute path, else
    # the temporary directory: a service user (www-data) often has no
    # writable home, and its home may be the web root.
    def backup_option
      value = given(:backup_path)
      return nil if false.equal?(value)
      return default_backup_directory if nil.equal?(value)

      file = path(:backup_path)
      if file.empty?
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

# frozen_string_literal: true

require "logger"

module Forkflag
  # Validated options of a {Client}. Every option is checked when the client
  # is created; a wrong one raises ArgumentError (or TypeError) naming it.
  class Config
    # Option name => [default, description]
    OPTIONS = {
      bootstrap: [nil, "flags payload (client-features JSON String) to start from"],
      file: [nil, "path of a client-features JSON file to load"],
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
      OPTIONS.each { |name, (default, _)| instance_variable_set(:"@#{name}", options.fetch(name, default)) }
      validate!
      freeze
    end

    # The options the native client reads.
    def native_options
      { bootstrap: bootstrap, file: file }
    end

    private

    def validate!
      @bootstrap = string_option(:bootstrap, @bootstrap)
      @file = path_option(:file, @file)
      @logger = logger_option(@logger)
      return if @bootstrap || @file

      raise ArgumentError, "Forkflag::Client.new needs a source of flags: file: or bootstrap:"
    end

    def string_option(name, value)
      return nil if value.nil?
      return value.to_str.dup.freeze if value.respond_to?(:to_str)

      raise TypeError, "option #{name.inspect} must be a String, got #{value.inspect} (#{value.class})"
    end

    def path_option(name, value)
      return nil if value.nil?
      return value.to_path.dup.freeze if value.respond_to?(:to_path)

      string_option(name, value)
    end

    def logger_option(value)
      return Logger.new($stderr, level: Logger::WARN, progname: "forkflag") if value.nil?
      return value if %i[debug info warn error].all? { |m| value.respond_to?(m) }

      raise TypeError, "option :logger must respond to debug, info, warn and error, got #{value.inspect}"
    end
  end
end

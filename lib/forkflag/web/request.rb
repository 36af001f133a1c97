# frozen_string_literal: true

require "erb"
require "rack/utils"
require_relative "../../forkflag"

module Forkflag
  class Web
    # What a page needs of a Rack request: its path inside the mount point,
    # its query parameters (checked: size, encoding, one value per name) and
    # links that respect the mount point (SCRIPT_NAME).
    class Request
      # Longest query string read, in bytes.
      MAX_QUERY_BYTES = 16_384
      # Longest value of one parameter, in characters.
      MAX_VALUE_CHARS = 4_096

      # A request the page cannot read (too long, not UTF-8, malformed):
      # answered with a 400 page naming the problem.
      class Invalid < StandardError; end

      # @return [String] the path inside the mount point, decoded ("/" at least)
      attr_reader :path

      # @return [String] where the page is mounted ("" at the root)
      attr_reader :script_name

      # Never raises: a path or query the page cannot read is reported by
      # {#check!}.
      #
      # @param env [Hash] the Rack environment
      def initialize(env)
        @env = env
        @problems = []
        @script_name = string(env, "SCRIPT_NAME").chomp("/")
        @path = ::Rack::Utils.unescape_path(string(env, "PATH_INFO")).dup.force_encoding(Encoding::UTF_8)
        @path = "/" if @path.empty?
        @params = nil
      end

      # Checks that the path and the query string can be read.
      #
      # @return [void]
      # @raise [Invalid] naming what is wrong: a path not UTF-8 once decoded,
      #   or what {#[]} raises for
      def check!
        raise Invalid, @problems.first unless @problems.empty?
        raise Invalid, "the path is not valid UTF-8 once decoded" unless @path.valid_encoding?

        params
        nil
      end

      # One query parameter.
      #
      # @param name [String]
      # @return [String] the value, stripped of surrounding blanks ("" when absent)
      # @raise [Invalid] when the query string is too long or malformed, a
      #   value is too long or not UTF-8, or the name is given twice
      def [](name)
        params.fetch(name, "")
      end

      # Whether the query string names the parameter.
      #
      # @param name [String]
      # @return [Boolean]
      def key?(name)
        params.key?(name)
      end

      # A link to a page of this app, inside its mount point.
      #
      # @param path [String] a path of this app, e.g. "/flags"
      # @param query [Hash{String=>String}] query parameters (empty ones left out)
      # @return [String] not yet HTML-escaped (the pages escape it as an attribute)
      def href(path, query = {})
        pairs = query.reject { |_, v| v.nil? || v.to_s.empty? }
        url = "#{@script_name}#{path}"
        pairs.empty? ? url : "#{url}?#{URI.encode_www_form(pairs)}"
      end

      # The link to one flag's page: its name escaped as one path segment
      # (a "/" in a name is %2F).
      #
      # @param name [String]
      # @return [String]
      def flag_href(name)
        href("/flags/#{ERB::Util.url_encode(name)}")
      end

      # @return [Boolean] whether it is a HEAD request (headers only)
      def head?
        "HEAD" == @env["REQUEST_METHOD"] # rubocop:disable Style/YodaCondition -- the env value may be any object
      end

      private

      def params
        @params ||= parse(string(@env, "QUERY_STRING"))
      end

      def parse(query)
        if query.bytesize > MAX_QUERY_BYTES
          raise Invalid, "the query string is #{query.bytesize} bytes long; at most #{MAX_QUERY_BYTES} are read"
        end

        params = {}
        query.split("&").each do |pair|
          next if pair.empty?

          name, value = pair.split("=", 2).map { |part| ::Rack::Utils.unescape(part, Encoding::BINARY) }
          name = utf8(name, "a parameter name")
          raise Invalid, "the parameter #{name.inspect} is given more than once" if params.key?(name)

          params[name] = checked_value(name, value.to_s)
        end
        params
      rescue ArgumentError => e
        raise Invalid, "the query string is malformed (#{e.message})"
      end

      def checked_value(name, value)
        value = utf8(value, "the parameter #{name.inspect}")
        if value.length > MAX_VALUE_CHARS
          raise Invalid, "the parameter #{name.inspect} is #{value.length} characters long; " \
                         "at most #{MAX_VALUE_CHARS} are read"
        end
        value.strip
      end

      # A String of the Rack environment ("" when absent; one that is not a
      # String is reported by #check!).
      def string(env, key)
        value = env[key]
        return value if Untrusted.kind?(value, String)

        @problems << "the request's #{key} is not a String" unless nil.equal?(value)
        ""
      end

      def utf8(string, what)
        string = string.dup.force_encoding(Encoding::UTF_8)
        raise Invalid, "#{what} is not valid UTF-8" unless string.valid_encoding?

        string
      end
    end
  end
end

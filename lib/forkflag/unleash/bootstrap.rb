# frozen_string_literal: true

require "json"
require "net/http"

# The official SDK's API, backed by forkflag (lib/forkflag/unleash.rb).
module Unleash
  # Bootstrapping as the official SDK's +bootstrap_config:+ option takes it
  # (see {Bootstrap::Configuration}).
  module Bootstrap
    # Where a client takes its first flags from before the server answers:
    # data (JSON text, or a Hash), a block (called once), a file, or a URL
    # (fetched in the background: the client never waits on the network).
    # UNLEASH_BOOTSTRAP_FILE and UNLEASH_BOOTSTRAP_URL stand in for
    # file_path and url when they are not given.
    class Configuration
      attr_accessor :data, :file_path, :url, :url_headers, :block

      # @param opts [Hash] data, file_path, url, url_headers, block (Symbol or String keys)
      def initialize(opts = {})
        opts ||= {}
        given = ->(key) { opts[key.to_s] || opts[key] }
        self.data = given[:data]
        self.file_path = given[:file_path] || ENV.fetch("UNLEASH_BOOTSTRAP_FILE", nil)
        self.url = given[:url] || ENV.fetch("UNLEASH_BOOTSTRAP_URL", nil)
        self.url_headers = given[:url_headers]
        self.block = given[:block]
      end

      # Whether it names a source.
      def valid?
        ![data, file_path, url, block].all?(&:nil?)
      end

      # The payload text of the first source that applies, in the official
      # SDK's order (data, block, file); nil when only a URL is given (see
      # {#fetch_url}).
      # @raise [Forkflag::ConfigError] for data that is neither text nor a
      #   Hash, or a block that gives neither
      # @raise [SystemCallError] for a file that cannot be read
      def local_payload
        return payload_text(data, "data") unless data.nil?
        return payload_text(block.call, "the block's result") if block.respond_to?(:call)
        return File.read(file_path) if file_path

        nil
      end

      # The payload fetched from url (GET, with url_headers or else the
      # configuration's headers), or nil when it did not answer 200.
      def fetch_url(config)
        uri = URI(url)
        request = Net::HTTP::Get.new(uri)
        headers = url_headers.is_a?(Hash) ? url_headers : config.http_headers
        headers.each { |k, v| request[k.to_s] = v.to_s }
        request["Content-Type"] = "application/json"
        timeouts = { open_timeout: config.timeout, read_timeout: config.timeout }
        response = Net::HTTP.start(uri.host, uri.port, use_ssl: uri.scheme == "https", **timeouts) do |http|
          http.request(request)
        end
        response.code == "200" ? response.body : nil
      end

      private

      def payload_text(value, what)
        case value
        when String then value
        when Hash then JSON.generate(value)
        else raise Forkflag::ConfigError, "bootstrap_config: #{what} must be JSON text or a Hash, got #{value.class}"
        end
      end
    end
  end
end
